package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/planner/inventory/kolla"
)

// TestKollaImportThenPlan runs the two commands an operator of a Kolla
// cloud starts with: import their multinode file, then plan a release
// against it; the plan equals the planner's reviewed golden plan.
func TestKollaImportThenPlan(t *testing.T) {
	planner := "../../services/planner"
	invPath := filepath.Join(t.TempDir(), "inv.yaml")
	var stderr bytes.Buffer
	if err := importKolla(filepath.Join(planner, "inventory/kolla/testdata/multinode"), invPath, kolla.Options{}, nil, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "ironic-api") || !strings.Contains(stderr.String(), "wrote") {
		t.Errorf("stderr = %q, want the skipped groups and the summary", stderr.String())
	}
	var got bytes.Buffer
	if err := writePlan(t.Context(), &got, filepath.Join(planner, "plan/testdata/kolla/release.yaml"), invPath, "text", false, false); err != nil {
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
		{"no inventory", "r.yaml", "", "text", "--inventory are required"},
		{"bad output", "r.yaml", "i.yaml", "yaml", "use text or json"},
		{"missing file", "nope.yaml", "i.yaml", "json", "read release manifest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := writePlan(t.Context(), &bytes.Buffer{}, tc.f, tc.inv, tc.o, false, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
