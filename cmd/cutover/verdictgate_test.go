package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
	"github.com/cutover-dev/cutover/services/planner"
)

// TestWaveWaitsForTheAuditorsVerdict runs the real planner and the real
// auditor watcher: with wait_for_verdicts, the second wave starts only after
// the auditor closed the first wave's watch window and judged web healthy
// from the signals a monitor sent. Only the node-updaters are fakes.
func TestWaveWaitsForTheAuditorsVerdict(t *testing.T) {
	s := natstest.Start(t)
	w, err := verdict.NewWatcher(verdict.WatcherConfig{Judge: verdict.Config{Watch: time.Second}}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, w, 10*time.Second)
	for _, n := range []string{"n1", "n2"} {
		nodeThatReports(t, s.JS, n, []events.ObservedContainer{{Name: "web", Service: "web", Image: "web:v1", State: "running"}})
	}
	p, err := planner.New(t.Context(), planner.Config{PollInterval: 50 * time.Millisecond}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, p, 10*time.Second)

	// Once the first wave completes, a monitor reports web passing on the
	// node it changed.
	pub := events.NewPublisher(s.JS)
	sub, err := s.Conn.Subscribe(events.SubjectUpgradeStatusAll, func(m *nats.Msg) {
		e, err := events.Decode(m.Header, m.Data)
		if err != nil || e.Type() != events.TypeWaveCompleted {
			return
		}
		d, _ := events.DataAs[events.WaveCompleted](e)
		if d.Wave != 0 || len(d.Nodes) != 1 {
			return
		}
		for range 3 {
			sig := events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "web", Node: d.Nodes[0], Status: "pass", Message: "HTTP 200"},
				events.WithSubject("web"), events.WithNode(d.Nodes[0]))
			if err := pub.Publish(context.Background(), sig); err != nil {
				t.Errorf("publish signal: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{
		Release:         events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}},
		WaitForVerdicts: true, VerdictTimeoutMs: 60_000,
	})
	if err := pub.Publish(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	var u *planner.Upgrade
	natstest.Eventually(t, 60*time.Second, "the upgrade to end", func() bool {
		u, err = planner.LoadUpgrade(t.Context(), s.JS, req.ID())
		return err == nil && u.Final() && len(u.Outbox) == 0
	})
	if u.Phase != planner.PhaseCompleted {
		t.Fatalf("upgrade ended %s (%q), want completed", u.Phase, u.Reason)
	}

	// In the stream: the healthy verdict on wave 0 comes before the second
	// wave's node command.
	verdictAt, commands := -1, []int{}
	for i, e := range streamEvents(t, s.JS) {
		switch e.Type() {
		case events.TypeHealthVerdict:
			if v, _ := events.DataAs[events.HealthVerdict](e); v.Wave == 0 && v.Service == "web" && v.Verdict == "healthy" && verdictAt < 0 {
				verdictAt = i
			}
		case events.TypeNodeUpdateRequested:
			commands = append(commands, i)
		}
	}
	if verdictAt < 0 || len(commands) != 2 || commands[1] < verdictAt {
		t.Errorf("healthy verdict on wave 0 at %d, node commands at %v; want two commands, the second after the verdict", verdictAt, commands)
	}
}
