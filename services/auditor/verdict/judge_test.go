package verdict_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

// step is one input of a judge script: an event stored at t0+at, or a tick
// at t0+at when e is nil.
type step struct {
	at time.Duration
	e  *events.Event
}

func ev(at time.Duration, e events.Event) step { return step{at: at, e: &e} }
func tick(at time.Duration) step               { return step{at: at} }

const up = "up-1"

func byPlanner(d events.Data) events.Event {
	return events.MustNew(events.Source("planner", ""), d, events.WithUpgrade(up))
}

func plan() events.Event {
	return byPlanner(events.UpgradePlanned{Release: "v2", Waves: []events.PlannedWave{{Index: 0, Nodes: []string{"n1"}}, {Index: 1, Nodes: []string{"n2"}}},
		Changes: []events.ContainerChange{
			{Node: "n1", Container: "web-1", Service: "web"}, {Node: "n2", Container: "web-2", Service: "web"},
			{Node: "n2", Container: "ovs-2", Service: "ovs"},
		}})
}

func waveDone(w int, nodes ...string) events.Event {
	return byPlanner(events.WaveCompleted{Wave: w, Nodes: nodes})
}

func sig(service, node, status string) events.Event {
	return events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: service, Node: node, Status: status, Check: "http /healthz", Message: "HTTP 503"},
		events.WithSubject(service), events.WithNode(node))
}

// outcome summarises one output event.
func outcome(e events.Event) string {
	switch e.Type() {
	case events.TypeHealthVerdict:
		d, _ := events.DataAs[events.HealthVerdict](e)
		return fmt.Sprintf("verdict %s wave %d %s", d.Service, d.Wave, d.Verdict)
	case events.TypeRollbackRequested:
		return "rollback " + events.UpgradeID(e)
	}
	return e.Type()
}

func TestJudge(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		cfg    verdict.Config
		steps  []step
		want   []string
		stats  func(verdict.Stats) bool
		reason string // a substring of the rollback reason
	}{
		{
			name: "consecutive failures during a watch window fail and roll back at once",
			steps: []step{ev(0, plan()), ev(1*s, waveDone(0, "n1")),
				ev(2*s, sig("web", "n1", "fail")), ev(3*s, sig("web", "n1", "fail")), ev(4*s, sig("web", "n1", "fail"))},
			want:   []string{"verdict web wave 0 failing", "rollback up-1"},
			reason: "service web failed its health policy in the watch window of wave 0: 3 consecutive failures from n1",
		},
		{
			name:  "no signal is inconclusive when the window closes",
			steps: []step{ev(0, plan()), ev(1*s, waveDone(0, "n1")), tick(5 * s), tick(12 * s)},
			want:  []string{"verdict web wave 0 inconclusive"},
		},
		{
			name: "passing signals are healthy when the window closes",
			steps: []step{ev(0, plan()), ev(1*s, waveDone(0, "n1")),
				ev(2*s, sig("web", "n1", "pass")), ev(3*s, sig("web", "n1", "fail")), ev(4*s, sig("web", "n1", "pass")), tick(12 * s)},
			want: []string{"verdict web wave 0 healthy"},
		},
		{
			name: "failures on different nodes are not consecutive; the ratio fails at close",
			steps: []step{ev(0, plan()), ev(1*s, waveDone(0, "n1", "n2")),
				ev(2*s, sig("web", "n1", "fail")), ev(2*s, sig("web", "n2", "fail")), ev(3*s, sig("web", "n1", "pass")),
				ev(3*s, sig("web", "n2", "fail")), ev(4*s, sig("web", "n1", "pass")), tick(12 * s)},
			want: []string{"verdict ovs wave 0 inconclusive", "verdict web wave 0 failing", "rollback up-1"}, reason: "failure ratio 0.60",
		},
		{
			name: "a report-only policy publishes the verdict without a rollback",
			cfg:  verdict.Config{Policies: map[string]verdict.Policy{"web": {Action: verdict.ActionReport}}},
			steps: []step{ev(0, plan()), ev(1*s, waveDone(0, "n1")),
				ev(2*s, sig("web", "n1", "fail")), ev(3*s, sig("web", "n1", "fail")), ev(4*s, sig("web", "n1", "fail"))},
			want: []string{"verdict web wave 0 failing"},
		},
		{
			name: "signals outside a window are idle, for unknown services dropped",
			steps: []step{ev(0, plan()), ev(1*s, sig("web", "n1", "fail")), ev(1*s, waveDone(0, "n1")),
				ev(12*s, sig("web", "n1", "fail")), ev(2*s, sig("nosuch", "n1", "fail")), tick(12 * s)},
			want:  []string{"verdict web wave 0 inconclusive"},
			stats: func(st verdict.Stats) bool { return st.Idle == 2 && st.Unknown == 1 && st.Signals == 0 },
		},
		{
			name: "an interruption above max_interruption fails the wave's service",
			cfg:  verdict.Config{Policies: map[string]verdict.Policy{"ovs": {MaxInterruption: 500 * time.Millisecond}}},
			steps: []step{ev(0, plan()), ev(1*s, byPlanner(events.WaveStarted{Wave: 1, Nodes: []string{"n2"}})),
				ev(2*s, events.MustNew(events.Source("node-updater", "n2"), events.ContainerReplaced{Container: "ovs-2", Result: events.ResultReplaced, InterruptionMs: 2300},
					events.WithUpgrade(up), events.WithNode("n2"))),
				ev(3*s, sig("web", "n2", "pass"))},
			want:   []string{"verdict ovs wave 1 failing", "rollback up-1"},
			reason: "container ovs-2 on n2 was interrupted for 2.3s",
		},
		{
			name: "the post-upgrade window judges every changed service",
			steps: []step{ev(0, plan()), ev(1*s, byPlanner(events.UpgradeCompleted{Release: "v2"})),
				ev(2*s, sig("ovs", "n2", "pass")), ev(3*s, sig("web", "n1", "pass")), tick(40 * s)},
			want: []string{"verdict ovs wave -1 healthy", "verdict web wave -1 healthy"},
		},
		{
			name: "a rollback requested by someone else stops the windows",
			steps: []step{ev(0, plan()), ev(1*s, waveDone(0, "n1")),
				ev(2*s, byPlanner(events.RollbackRequested{Reason: "operator"})),
				ev(3*s, sig("web", "n1", "fail")), ev(3*s, sig("web", "n1", "fail")), ev(3*s, sig("web", "n1", "fail")), tick(20 * s)},
			want: nil,
		},
		{
			name: "one rollback per upgrade even when several services fail",
			steps: []step{ev(0, plan()), ev(1*s, byPlanner(events.UpgradeCompleted{Release: "v2"})),
				ev(2*s, sig("ovs", "n2", "fail")), ev(2*s, sig("ovs", "n2", "fail")), ev(2*s, sig("ovs", "n2", "fail")),
				ev(3*s, sig("web", "n1", "fail")), ev(3*s, sig("web", "n1", "fail")), ev(3*s, sig("web", "n1", "fail"))},
			want: []string{"verdict ovs wave -1 failing", "rollback up-1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := verdict.NewJudge(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var rollback events.Event
			for _, st := range tt.steps {
				var out []events.Event
				if st.e == nil {
					out = j.Tick(t0.Add(st.at))
				} else {
					out = j.Observe(t0.Add(st.at), *st.e)
				}
				for _, o := range out {
					got = append(got, outcome(o))
					if events.UpgradeID(o) != up {
						t.Errorf("%s has upgradeid %q, want %q", o.Type(), events.UpgradeID(o), up)
					}
					if o.Type() == events.TypeRollbackRequested {
						rollback = o
					}
				}
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Fatalf("outputs:\n got %q\nwant %q", got, tt.want)
			}
			if tt.reason != "" {
				d, _ := events.DataAs[events.RollbackRequested](rollback)
				if !strings.Contains(d.Reason, tt.reason) || d.RequestedBy != "auditor" {
					t.Errorf("rollback reason %q (by %q), want it to say %q", d.Reason, d.RequestedBy, tt.reason)
				}
			}
			if tt.stats != nil && !tt.stats(j.Stats()) {
				t.Errorf("stats = %+v", j.Stats())
			}
		})
	}
}

func TestVerdictIDsAreStable(t *testing.T) {
	run := func() []string {
		j, err := verdict.NewJudge(verdict.Config{})
		if err != nil {
			t.Fatal(err)
		}
		j.Observe(t0, plan())
		j.Observe(t0, waveDone(0, "n1"))
		var ids []string
		for range 3 {
			for _, o := range j.Observe(t0.Add(time.Second), sig("web", "n1", "fail")) {
				ids = append(ids, o.ID())
			}
		}
		return ids
	}
	a, b := run(), run()
	if len(a) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Fatalf("a repeated decision got ids %v then %v, want the same two ids (JetStream deduplicates them)", a, b)
	}
}

// TestJudgeMemoryIsBounded floods a window with signals from many sources
// and for many unknown services: what the judge holds stays within its caps
// and the heap does not grow with the number of signals.
func TestJudgeMemoryIsBounded(t *testing.T) {
	j, err := verdict.NewJudge(verdict.Config{Watch: time.Hour, Policies: map[string]verdict.Policy{"web": {ConsecutiveFailures: 1 << 30}}})
	if err != nil {
		t.Fatal(err)
	}
	j.Observe(t0, plan())
	j.Observe(t0, waveDone(0, "n1", "n2"))
	flood := func(n int) {
		for i := range n {
			at := t0.Add(time.Duration(i) * time.Microsecond)
			j.Observe(at, events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "web", Node: "n1", Container: fmt.Sprintf("web-%d", i),
				Status: []string{"pass", "fail"}[i%2]}, events.WithNode("n1")))
			j.Observe(at, sig(fmt.Sprintf("svc-%d", i), "n1", "fail"))
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	flood(10_000) // warm up: the caps are reached
	before := heap()
	flood(200_000)
	after := heap()
	st := j.Stats()
	if st.Signals != 210_000 || st.Unknown != 210_000 {
		t.Errorf("stats = %+v, want 210000 counted and 210000 unknown", st)
	}
	if st.Windows != 2 || st.Buffered > 2*5 {
		t.Errorf("the judge holds %d windows and %d signals, want 2 windows and at most 10 signals", st.Windows, st.Buffered)
	}
	if grown := int64(after) - int64(before); grown > 1<<20 {
		t.Errorf("heap grew by %d bytes over 400000 more signals, want under 1 MiB", grown)
	}
	t.Logf("heap before %d, after %d bytes", before, after)
}
