package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/planning"
	"github.com/cutover-dev/cutover/inventory/kolla"
)

// TestKollaImportThenPlan runs the two commands an operator of a Kolla
// cloud starts with: import their multinode file, then plan a release
// against it; the plan equals the planner's reviewed golden plan.
func TestKollaImportThenPlan(t *testing.T) {
	planner := "../../services/planner"
	invPath := filepath.Join(t.TempDir(), "inv.yaml")
	var stderr bytes.Buffer
	globals := "../../inventory/kolla/testdata/globals.yml"
	g, err := kolla.LoadGlobals(globals)
	if err != nil {
		t.Fatal(err)
	}
	opts := kolla.Options{Globals: g, GlobalsFile: globals}
	if err := planning.ImportKolla("../../inventory/kolla/testdata/multinode", invPath, opts, nil, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "skipped services globals.yml disables: ") || !strings.Contains(stderr.String(), "blazar-api") || !strings.Contains(stderr.String(), "wrote") {
		t.Errorf("stderr = %q, want the disabled services, the unknown group and the summary", stderr.String())
	}
	// The planner's golden kolla inventory is this import.
	imported, err := os.ReadFile(invPath)
	if err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join(planner, "plan/testdata/kolla/inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The header names the paths the import was run with; compare the rest.
	if _, body, _ := bytes.Cut(imported, []byte("\nnodes:")); !bytes.Contains(golden, append([]byte("\nnodes:"), body...)) {
		t.Errorf("import differs from plan/testdata/kolla/inventory.yaml; copy it there and review:\n%s", imported)
	}
	var got bytes.Buffer
	if _, err := planning.Write(t.Context(), &got, filepath.Join(planner, "plan/testdata/kolla/release.yaml"), invPath, "text", false, false, nil); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(planner, "plan/testdata/kolla/plan.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("plan differs from the golden plan:\n%s", got.String())
	}
}

func TestPlanFlagErrors(t *testing.T) {
	tests := []struct{ name, f, inv, o, want string }{
		{"no release", "", "i.yaml", "text", "-f is required"},
		{"bad output", "r.yaml", "i.yaml", "yaml", "use text or json"},
		{"missing file", "nope.yaml", "i.yaml", "json", "read release manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := planning.Write(t.Context(), &bytes.Buffer{}, tc.f, tc.inv, tc.o, false, false, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestKollaPinnedImportThenPlan: a cloud whose hosts of one service run
// different images (a tag pinned on one compute's line) imports to a valid
// inventory, and the plan compares each node with what it runs: moving
// every compute to the pinned hotfix changes the other two only.
func TestKollaPinnedImportThenPlan(t *testing.T) {
	dir := t.TempDir()
	invPath := filepath.Join(dir, "inv.yaml")
	globals := "../../inventory/kolla/testdata/pinned-globals.yml"
	g, lines, err := kolla.ReadGlobals(globals)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	opts := kolla.Options{Globals: g, GlobalsLines: lines, GlobalsFile: globals}
	if err := planning.ImportKolla("../../inventory/kolla/testdata/pinned", invPath, opts, nil, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "containers pinned to another image than their service's (under nodes.<host>.images): control02/mariadb, compute02/nova_compute") {
		t.Errorf("stderr = %q, want the pinned containers listed", stderr.String())
	}
	release := filepath.Join(dir, "release.yaml")
	const hotfix = "registry.example.net:4000/kolla/nova-compute:2025.1-hotfix3"
	if err := os.WriteFile(release, []byte("release: hotfix3-everywhere\nservices:\n  nova-compute: {image: \""+hotfix+"\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if _, err := planning.Write(t.Context(), &got, release, invPath, "text", false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"release hotfix3-everywhere: 2 containers change, 1 unchanged", "2/3 instances change"} {
		if !strings.Contains(got.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, got.String())
		}
	}
	if strings.Contains(got.String(), "compute02: nova_compute") {
		t.Errorf("compute02 already runs %s but the plan changes it:\n%s", hotfix, got.String())
	}
}
