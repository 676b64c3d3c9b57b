package upgrades

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

func TestStatusShowsWhatTheNextWaveWaitsFor(t *testing.T) {
	u := &planner.Upgrade{ID: "u1", Phase: planner.PhaseRunning, VerdictTimeout: 5 * time.Minute,
		Gate: &planner.VerdictGate{Wave: 0, Since: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), Waiting: []string{"nova-api", "web"}}}
	var b strings.Builder
	PrintStatus(&b, u)
	want := "waiting    wave 1 waits for the auditor's healthy verdicts on wave 0: nova-api and web ("
	if !strings.Contains(b.String(), want) {
		t.Errorf("status:\n%s\nlacks %q", b.String(), want)
	}
}

// TestStatusInPlainWords: a rolled-back upgrade reads as sentences, with no
// Go slice or map syntax, and long node names keep the columns aligned.
func TestStatusInPlainWords(t *testing.T) {
	u := &planner.Upgrade{ID: "u1", Phase: planner.PhaseRolledBack, Reason: "wave 0 failed: n1: container web-1 failed at pull: connection refused",
		Plan:     events.UpgradePlanned{Waves: []events.PlannedWave{{Index: 0}}},
		Rollback: &planner.RollbackProgress{Reason: "wave 0 failed", Done: []string{}, Queue: []string{}},
		Nodes: map[string]*planner.NodeProgress{
			"n1@0": {Node: "n1", Wave: 0, Status: planner.NodeFailed, Error: "pull: connection refused", Results: []events.ContainerResult{{Container: "web-1", Result: events.ResultReverted}}},
			"a-very-long-compute-node-name.example.org@0": {Node: "a-very-long-compute-node-name.example.org", Wave: 0, Status: planner.NodeCompleted, Results: []events.ContainerResult{{Container: "web-2", Result: events.ResultUnchanged}}},
		}}
	var b strings.Builder
	PrintStatus(&b, u)
	out := b.String()
	for _, bad := range []string{"[]", "map[", "done [", "queued ["} {
		if strings.Contains(out, bad) {
			t.Errorf("status shows Go syntax %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{"rollback   wave 0 failed: 0 nodes returned to their previous images", "phase      rolled-back", "waves      1 wave, at wave 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	var cols []int
	for _, l := range lines {
		if !strings.HasPrefix(l, "0 ") {
			continue
		}
		if i := strings.Index(l, "failed "); i > 0 {
			cols = append(cols, i)
		}
		if i := strings.Index(l, "completed"); i > 0 {
			cols = append(cols, i)
		}
	}
	if len(cols) != 2 || cols[0] != cols[1] {
		t.Errorf("step column not aligned (%v):\n%s", cols, out)
	}
	if err := StatusExit(u); err != (exit.Error{Code: 1}) {
		t.Errorf("exit for rolled-back = %v, want 1", err)
	}
}

// TestMatchUpgrade names an upgrade by id, unique id prefix or release
// name, and refuses what is ambiguous or unknown, naming the candidates.
func TestMatchUpgrade(t *testing.T) {
	ups := []*planner.Upgrade{
		{ID: "019a-aaaa", Release: events.Release{Name: "2025.1"}, Phase: "completed"},
		{ID: "019a-aabb", Release: events.Release{Name: "2025.2"}, Phase: "rolled-back"},
		{ID: "019b-cccc", Release: events.Release{Name: "2025.2"}, Phase: "running"},
	}
	tests := []struct{ arg, want, err string }{
		{arg: "019a-aabb", want: "019a-aabb"},
		{arg: "019b", want: "019b-cccc"},
		{arg: "2025.1", want: "019a-aaaa"},
		{arg: "019a-aa", err: `"019a-aa" is the start of 2 upgrade ids (019a-aaaa (completed), 019a-aabb (rolled-back))`},
		{arg: "2025.2", err: `release "2025.2" names 2 upgrades`},
		{arg: "nope", err: "no upgrade has the id, id prefix or release name"},
	}
	for _, tc := range tests {
		got, err := Match(ups, tc.arg)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Match(%q) = %q, %v; want %q, %q", tc.arg, got, err, tc.want, tc.err)
		}
	}
}
