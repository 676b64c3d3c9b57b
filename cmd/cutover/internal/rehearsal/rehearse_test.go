package rehearsal

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// TestRehearsal200Nodes runs the real planner and 200 real node-updaters on
// the simulated runtime with 5% of replacements failing, and checks from the
// event history and the simulated nodes that the safety invariants held.
func TestRehearsal200Nodes(t *testing.T) {
	tests := []struct {
		name    string
		action  string
		seed    int64
		outcome string
	}{
		// Seed 4 fails in wave 3, after 14 nodes changed: a real rollback.
		{"a failing wave rolls back", "rollback", 4, "upgrade.failed"},
		// Every wave runs; failed nodes revert their container.
		{"failures revert and the rollout continues", "continue", 4, "upgrade.completed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv, req := GeneratedFleet(200, 3, "10%")
			req.FailureAction = tc.action
			rep, err := rehearse(t.Context(), rehearsalConfig{
				Inventory: inv, Request: req, Seed: tc.seed, FailureRate: 0.05, Failures: sim.Spread(0.05),
			})
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.Text(&sb)
			t.Log(sb.String())
			if len(rep.Violations) > 0 {
				t.Fatalf("invariants violated:\n%s", strings.Join(rep.Violations, "\n"))
			}
			if rep.Outcome != tc.outcome {
				t.Fatalf("outcome %s (%s), want %s", rep.Outcome, rep.Reason, tc.outcome)
			}
			if rep.Reverted == 0 {
				t.Errorf("no container was reverted; a 5%% failure rate over %d containers should revert some", rep.Containers)
			}
			peak := 0
			for s, limit := range rep.MaxUnavailable {
				if limit != 20 {
					t.Errorf("service %s: max_unavailable %d, want 20 (10%% of 200)", s, limit)
				}
				peak = max(peak, rep.MaxDown[s])
			}
			if peak < 2 {
				t.Errorf("at most %d instance of any service was down at once; the waves should run several in parallel", peak)
			}
			switch tc.action {
			case "rollback":
				if rep.RollbackResult != "completed" || rep.RolledBackNodes == 0 {
					t.Errorf("rollback %q of %d nodes, want completed with some nodes", rep.RollbackResult, rep.RolledBackNodes)
				}
			case "continue":
				// How many of a wave's 20 nodes overlap depends on timing;
				// that all waves ran does not.
				if rep.WavesDone != rep.WavesPlanned {
					t.Errorf("%d of %d waves completed; want every wave", rep.WavesDone, rep.WavesPlanned)
				}
			}
		})
	}
}

// TestHistoryCountsInstancesDown checks the invariant checker itself on
// hand-made histories: what it must flag, and what it must not.
func TestHistoryCountsInstancesDown(t *testing.T) {
	req := events.MustNew(events.Source("cli", ""), events.UpgradeRequested{Release: events.Release{Name: "r", Services: map[string]events.ServiceRelease{"web": {Image: "web:2"}}}})
	type step struct {
		node, container, typ string
	}
	tests := []struct {
		name      string
		steps     []step
		wantDown  int
		wantStuck bool
	}{
		{"one at a time", []step{{"n1", "web", "draining"}, {"n1", "web", "replaced"}, {"n2", "web", "draining"}, {"n2", "web", "reverted"}}, 1, false},
		{"overlapping", []step{{"n1", "web", "draining"}, {"n2", "web", "draining"}, {"n1", "web", "replaced"}, {"n3", "web", "draining"}, {"n2", "web", "replaced"}, {"n3", "web", "replaced"}}, 2, false},
		{"never back", []step{{"n1", "web", "draining"}}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(req.ID(), nil)
			h.add(1, req)
			for i, s := range tc.steps {
				var d events.Data
				switch s.typ {
				case "draining":
					d = events.ContainerDraining{Container: s.container, Service: "web"}
				case "replaced":
					d = events.ContainerReplaced{Container: s.container, Service: "web", Result: events.ResultReplaced, FromImage: "web:1", ToImage: "web:2"}
				case "reverted":
					d = events.ContainerReverted{Container: s.container, Step: "health", Reason: "x", Image: "web:2"}
				}
				h.add(uint64(i+2), events.MustNew(events.Source("node-updater", s.node), d, events.WithNode(s.node), events.WithUpgrade(req.ID())))
			}
			h.add(99, events.MustNew(events.Source("planner", ""), events.UpgradeCompleted{Release: "r"}, events.WithUpgrade(req.ID())))
			rep := rehearsalReport{MaxDown: map[string]int{}}
			h.fill(&rep)
			if rep.MaxDown["web"] != tc.wantDown {
				t.Errorf("most down at once = %d, want %d", rep.MaxDown["web"], tc.wantDown)
			}
			if stuck := len(rep.Violations) > 0; stuck != tc.wantStuck {
				t.Errorf("violations %q, want some: %v", rep.Violations, tc.wantStuck)
			}
			if rep.Outcome != "upgrade.completed" {
				t.Errorf("outcome %q, want upgrade.completed", rep.Outcome)
			}
		})
	}
}

func TestParseLatencies(t *testing.T) {
	l, err := parseLatencies("pull=2s-10s,stop=normal:1s,200ms,start=100ms,health=0")
	if err != nil {
		t.Fatal(err)
	}
	want := sim.Latencies{Pull: sim.Uniform(2*time.Second, 10*time.Second), Stop: sim.Normal(time.Second, 200*time.Millisecond), Start: sim.Fixed(100 * time.Millisecond), Health: sim.Fixed(0)}
	if l != want {
		t.Fatalf("parseLatencies = %+v, want %+v", l, want)
	}
	for _, bad := range []string{"pull", "boot=1s", "pull=fast"} {
		if _, err := parseLatencies(bad); err == nil {
			t.Errorf("parseLatencies(%q) accepted it", bad)
		}
	}
}

// BenchmarkFleet runs a whole upgrade of N nodes × 20 containers on the
// simulated runtime with zero latencies (the real planner in a process of
// its own, N real node-updaters and embedded NATS in this one) and, in the
// same run, the bus floor: raw nats.go JetStream publish and consume of the
// same number of events. It reports the upgrade's duration, its events/s,
// the floor's msgs/s, their ratio, the planner process's peak RSS and this
// process's peak heap (updaters and NATS).
//
//	go test -run '^$' -bench 'BenchmarkFleet/nodes=1000$' -benchtime 1x -timeout 30m ./cmd/cutover/internal/rehearsal
func BenchmarkFleet(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var rep rehearsalReport
			var floor float64
			var peak uint64
			var plannerRSS int64
			finished := 1.0
			for b.Loop() {
				inv, req := GeneratedFleet(n, 20, "10%")
				stopPeak := watchHeap(&peak)
				ctx, cancel := context.WithTimeout(b.Context(), benchFleetTimeout(n))
				var err error
				rep, err = rehearse(ctx, rehearsalConfig{Inventory: inv, Request: req, Seed: 1, StartPlanner: plannerProcess(b, n, &plannerRSS)})
				cancel()
				stopPeak()
				if err != nil && rep.Outcome != "did not finish" {
					b.Fatal(err)
				}
				if err != nil || rep.Outcome == "event.rejected" {
					// Cut short by the time budget: report how far it got.
					b.Logf("%v (%s)\nafter %s: %d of %d waves completed, %d containers replaced, %d events (%.0f/s), planner state %d bytes",
						err, rep.Reason, rep.Duration.Round(time.Second), rep.WavesDone, rep.WavesPlanned, rep.Replaced, rep.Events, rep.EventsPerSec, rep.PlannerStateBytes)
					finished = 0
				} else if rep.Outcome != "upgrade.completed" || len(rep.Violations) > 0 {
					b.Fatalf("upgrade %s (%s), violations %v", rep.Outcome, rep.Reason, rep.Violations)
				}
				floor = busFloor(b, max(rep.Events, 5000))
			}
			b.ReportMetric(rep.Duration.Seconds(), "upgrade-s")
			b.ReportMetric(finished, "finished")
			b.ReportMetric(float64(rep.WavesDone), "waves-done")
			b.ReportMetric(float64(rep.WavesPlanned), "waves")
			b.ReportMetric(rep.EventsPerSec, "events/s")
			b.ReportMetric(floor, "floor-msgs/s")
			b.ReportMetric(rep.EventsPerSec/floor, "ratio")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(plannerRSS)/(1<<20), "planner-peak-RSS-MB")
			b.ReportMetric(float64(rep.PlannerStateBytes)/(1<<20), "planner-state-MB")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkFleetCluster runs BenchmarkFleet's upgrade (N nodes × 20
// containers, the planner in a process of its own) twice per iteration:
// on one NATS server, then on a 3-server cluster on loopback with the
// stream and buckets replicated 3 times. It reports both upgrades' events/s
// and their ratio (cluster / one server), and what one upgrade adds to the
// stream. At 1,000 nodes the one-server run then keeps the fleet idle for
// a minute (a heartbeat per node every 30 s, as deployed) and reports the
// stream's growth per day at that rate.
//
//	go test -run '^$' -bench 'BenchmarkFleetCluster/nodes=1000$' -benchtime 1x -timeout 30m ./cmd/cutover/internal/rehearsal
func BenchmarkFleetCluster(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var one, three rehearsalReport
			var rss int64
			idle := time.Duration(0)
			if n >= 1000 {
				idle = time.Minute
			}
			run := func(servers int, idle time.Duration) rehearsalReport {
				inv, req := GeneratedFleet(n, 20, "10%")
				ctx, cancel := context.WithTimeout(b.Context(), benchFleetTimeout(n)+idle)
				defer cancel()
				rep, err := rehearse(ctx, rehearsalConfig{Inventory: inv, Request: req, Seed: 1, Servers: servers, IdleWindow: idle,
					StartPlanner: plannerProcess(b, n, &rss)})
				if err != nil || rep.Outcome != "upgrade.completed" || len(rep.Violations) > 0 {
					b.Fatalf("%d server(s): upgrade %s (%s), %v, violations %v", servers, rep.Outcome, rep.Reason, err, rep.Violations)
				}
				return rep
			}
			for b.Loop() {
				one = run(1, idle)
				three = run(3, 0)
			}
			b.ReportMetric(one.EventsPerSec, "events/s-1server")
			b.ReportMetric(three.EventsPerSec, "events/s-3servers-R3")
			b.ReportMetric(three.EventsPerSec/one.EventsPerSec, "ratio")
			b.ReportMetric(one.Duration.Seconds(), "upgrade-s-1server")
			b.ReportMetric(three.Duration.Seconds(), "upgrade-s-3servers-R3")
			b.ReportMetric(float64(one.StreamBytes)/(1<<20), "upgrade-stream-MB")
			b.ReportMetric(float64(one.StoreBytes)/(1<<20), "store-MB-1server")
			b.ReportMetric(float64(three.StoreBytes)/(1<<20), "store-MB-3servers")
			if one.IdleWindow > 0 && one.IdleMsgs > 0 {
				b.ReportMetric(float64(one.IdleMsgs)/one.IdleWindow.Seconds(), "idle-msgs/s")
				b.ReportMetric(float64(one.IdleBytes)/float64(one.IdleMsgs), "idle-B/msg")
				b.ReportMetric(float64(one.IdleBytes)/one.IdleWindow.Seconds()*86400/(1<<20), "idle-stream-MB/day")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// benchFleetTimeout bounds one fleet upgrade so make bench ends in bounded
// time: a run cut short reports how far it got (finished 0, waves-done).
// CUTOVER_BENCH_FLEET_TIMEOUT overrides it.
func benchFleetTimeout(n int) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("CUTOVER_BENCH_FLEET_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	switch {
	case n <= 100:
		return 2 * time.Minute
	case n <= 1000:
		return 10 * time.Minute
	default:
		return 6 * time.Minute
	}
}

// watchHeap records the process's peak heap in use until the returned
// function is called.
func watchHeap(peak *uint64) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stop); <-done }
}

// busFloor measures raw JetStream: n node status events published
// synchronously and consumed by a durable pull consumer with explicit
// acks, in msgs/s from the first publish to the last ack.
func busFloor(b *testing.B, n int) float64 {
	b.Helper()
	dir := b.TempDir()
	bus, err := startRehearsalNATS(dir, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	nc, js, err := events.Connect(b.Context(), events.ClientConfig{URL: bus.URLs}, "bench-floor")
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	e := events.MustNew(events.Source("node-updater", "node00001"), events.ContainerReplaced{
		Container: "svc01", Service: "svc01", Result: events.ResultReplaced, FromImage: "sim.local/svc01:1", ToImage: "sim.local/svc01:2",
	}, events.WithNode("node00001"), events.WithUpgrade("u1"))
	tmpl, err := events.Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(b.Context(), events.StreamName, jetstream.ConsumerConfig{
		Durable: "floor", FilterSubjects: []string{tmpl.Subject}, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 256,
	})
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	all := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(all)
		}
	}, jetstream.PullMaxMessages(64))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	start := time.Now()
	for i := range n {
		m := nats.NewMsg(tmpl.Subject)
		for k, v := range tmpl.Header {
			m.Header[k] = v
		}
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("floor-%d", i))
		m.Data = tmpl.Data
		if _, err := js.PublishMsg(b.Context(), m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("the floor consumer got %d of %d messages in 2m", got.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds()
}
