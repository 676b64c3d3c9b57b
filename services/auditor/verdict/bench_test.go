package verdict_test

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

// BenchmarkSignalToRollback measures, over real NATS, the time from the
// publication of the failing signal that completes a policy (the third
// consecutive failure) to the rollback.requested observed by a subscriber.
// The baseline, in the same run, is the bus alone: a signal published to
// its observation by the same kind of subscriber. Reports p50 and p99 of
// both in milliseconds.
func BenchmarkSignalToRollback(b *testing.B) {
	s := natstest.Start(b)
	startWatcher(b, s.JS, verdict.WatcherConfig{Judge: verdict.Config{Watch: time.Hour}})
	got := make(chan time.Time, 16)
	sub, err := s.Conn.Subscribe(events.SubjectAll, func(m *nats.Msg) {
		if e, err := events.Decode(m.Header, m.Data); err == nil && (e.Type() == events.TypeRollbackRequested || e.Subject() == "baseline") {
			got <- time.Now()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	wait := func() time.Duration {
		select {
		case at := <-got:
			return time.Duration(at.UnixNano())
		case <-time.After(30 * time.Second):
			b.Fatal("no rollback.requested within 30s")
		}
		return 0
	}
	var cutover, baseline []time.Duration
	for b.Loop() {
		handUpgrade(b, s.JS)
		publish(b, s.JS, failing("web", "n1"), failing("web", "n1"))
		start := time.Now()
		publish(b, s.JS, failing("web", "n1"))
		cutover = append(cutover, wait()-time.Duration(start.UnixNano()))

		start = time.Now()
		publish(b, s.JS, events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "other", Node: "n1", Status: "pass"},
			events.WithSubject("baseline"), events.WithNode("n1")))
		baseline = append(baseline, wait()-time.Duration(start.UnixNano()))
	}
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		q := func(p float64) float64 {
			return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / float64(time.Millisecond)
		}
		b.ReportMetric(q(0.50), name+"-p50-ms")
		b.ReportMetric(q(0.99), name+"-p99-ms")
	}
	report("signal-to-rollback", cutover)
	report("bus-baseline", baseline)
}
