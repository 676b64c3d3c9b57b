package metrics_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/metrics"
	"github.com/cutover-dev/cutover/services/auditor/notify"
)

// BenchmarkObserve measures what the observers add to the auditor's
// per-event work on its consumer goroutine: the baseline builds the record
// (RecordOf, done for every event anyway); the observed run also counts it
// in Metrics and offers it to a Notifier (whose queue is never drained
// here, so it also measures the drop-oldest path).
func BenchmarkObserve(b *testing.B) {
	e := events.MustNew(events.Source("node-updater", "n1"), events.ContainerReplaced{Container: "web-1",
		Result: events.ResultReplaced, FromImage: "web:v1", ToImage: "web:v2", InterruptionMs: 120},
		events.WithUpgrade("u1"), events.WithNode("n1"))
	m := metrics.New(metrics.Config{})
	n, err := notify.New(notify.Config{URLs: []string{"http://127.0.0.1:1/hook"}, Filter: func(auditor.Record) bool { return true }, QueueSize: 1024,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, observe bool) float64 {
		start := time.Now()
		for b.Loop() {
			r, err := auditor.RecordOf(e, start)
			if err != nil {
				b.Fatal(err)
			}
			if observe {
				m.Observe(r)
				n.Observe(r)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(b.N)
	}
	var base, observed float64
	b.Run("baseline", func(b *testing.B) { base = run(b, false); b.ReportMetric(base, "ns/event") })
	b.Run("observed", func(b *testing.B) {
		observed = run(b, true)
		b.ReportMetric(observed, "ns/event")
		b.ReportMetric(base, "baseline-ns/event")
	})
}
