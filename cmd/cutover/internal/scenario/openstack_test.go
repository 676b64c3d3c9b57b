package scenario

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/harness/loadgen"
	"github.com/cutover-dev/cutover/services/planner"
)

// passing is a osResult every check accepts.
func osPassing() osResult {
	ok := loadgen.Result{Sent: 10, OK: 10}
	during := ok
	during.Acked = []loadgen.Ack{{ID: "a", WrittenBy: "v1"}, {ID: "b", WrittenBy: "v2"}}
	return osResult{
		Upgrade: osAttempt{Phase: string(planner.PhaseCompleted), Steps: []osStep{
			{Phase: "expand", Command: "db-sync --expand"}, {Phase: "migrate", Command: "db-sync --migrate"},
			{Phase: "migrate", Command: "online-data-migrations --max-count 100"}, {Phase: "contract", Command: "db-sync --contract"}}},
		Failed: osAttempt{Phase: string(planner.PhaseRolledBack), Steps: []osStep{{Phase: "expand", Failed: true, State: "clean at version 0 (restored from snapshot s)"}}},
		During: during, Reads: ok, After: ok, Acked: 2, Schema: 4,
		Images: map[string]string{"k1": "v2", "k2": "v2", "k3": "v2"},
	}
}

// Each way the scenario can go wrong is a problem the demo prints and
// fails on.
func TestOpenStackProblems(t *testing.T) {
	if ps := osPassing().problems(); len(ps) != 0 {
		t.Fatalf("a passing run has problems: %q", ps)
	}
	for _, tt := range []struct {
		name    string
		breakIt func(*osResult)
		want    string
	}{
		{"a lost write", func(r *osResult) { r.Missing = []string{"a (written by v1): not in the database"} }, "lost write a"},
		{"a failed request", func(r *osResult) { r.Reads.Failed = 1 }, "reads during v3: 1 of 10 requests failed"},
		{"v3 not restored", func(r *osResult) { r.Failed.Steps[0].State = "clean at version 0, kept: not restored" }, "want one db-sync --expand, failed and restored"},
		{"v3's table left", func(r *osResult) { r.Leftovers = []string{"table projects"} }, "nothing of v3"},
		{"a replica moved", func(r *osResult) { r.Images["k2"] = "v3" }, "k2 runs v3"},
		{"contract before the barrier", func(r *osResult) { r.Upgrade.Order = "db-sync --contract was asked at event 3" }, "v2: db-sync --contract"},
		{"migrations out of order", func(r *osResult) { r.Upgrade.Steps[1], r.Upgrade.Steps[3] = r.Upgrade.Steps[3], r.Upgrade.Steps[1] }, "v2's migrations"},
	} {
		r := osPassing()
		tt.breakIt(&r)
		if ps := strings.Join(r.problems(), "\n"); !strings.Contains(ps, tt.want) {
			t.Errorf("%s: problems %q, want one saying %q", tt.name, ps, tt.want)
		}
	}
}

// osCheckOrder refuses an expand answered after a node moved and a later
// step asked before the last node answered.
func TestOpenStackCheckOrder(t *testing.T) {
	good := []osStep{{Phase: "expand", requested: 1, settled: 2}, {Phase: "contract", requested: 9, settled: 10}}
	if got := osCheckOrder(good, 3, 8); got != "" {
		t.Errorf("good order: %s", got)
	}
	if got := osCheckOrder(good, 1, 8); !strings.Contains(got, "after the first node command") {
		t.Errorf("expand after the first node command: %q", got)
	}
	if got := osCheckOrder(good, 3, 12); !strings.Contains(got, "before the last node answer") {
		t.Errorf("contract before the last node answer: %q", got)
	}
}
