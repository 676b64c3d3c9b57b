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
