package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor/notify"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

// lagCollector lists the durable consumers of the CUTOVER stream at each
// scrape. Reading at scrape time rather than polling means no goroutine to
// own, and values as fresh as the scrape.
type lagCollector struct {
	js      Streams
	timeout time.Duration
	log     *slog.Logger

	pending    *prometheus.Desc
	ackPending *prometheus.Desc
	errors     prometheus.Counter
}

func newLagCollector(js Streams, timeout time.Duration, log *slog.Logger) *lagCollector {
	return &lagCollector{
		js: js, timeout: timeout, log: log,
		pending: prometheus.NewDesc("cutover_consumer_pending_messages",
			"Messages of the CUTOVER stream not yet delivered to a durable consumer (NumPending).", []string{"consumer"}, nil),
		ackPending: prometheus.NewDesc("cutover_consumer_ack_pending_messages",
			"Messages delivered to a durable consumer and not yet acknowledged (NumAckPending).", []string{"consumer"}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_consumer_scrape_errors_total",
			Help: "Scrapes whose listing of the CUTOVER stream's consumers failed or timed out.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	defer c.errors.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.js.Stream(ctx, events.StreamName)
	if err != nil {
		c.fail(err)
		return
	}
	l := s.ListConsumers(ctx)
	for ci := range l.Info() {
		// Ordered and other ephemeral consumers come and go with their
		// readers; only durable ones have a lag worth alerting on.
		if ci == nil || ci.Config.Durable == "" {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(ci.NumPending), ci.Name)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(ci.NumAckPending), ci.Name)
	}
	if err := l.Err(); err != nil {
		c.fail(err)
	}
}

func (c *lagCollector) fail(err error) {
	c.errors.Inc()
	c.log.Warn("list consumers of the stream for metrics; is NATS reachable?", "stream", events.StreamName, "err", err)
}

// verdictCollector reads the health watcher's counters at each scrape.
type verdictCollector struct {
	stats func() verdict.WatcherStats

	signals, shed, rollbacks, verdicts       *prometheus.Desc
	windows, upgrades, buffered, lag, outbox *prometheus.Desc
}

func newVerdictCollector(stats func() verdict.WatcherStats) *verdictCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("cutover_verdict_"+name, help, labels, nil)
	}
	return &verdictCollector{
		stats:     stats,
		signals:   d("signals_total", "Health signals seen by the health watcher, by what became of them: counted (in a window), unknown (no policy or upgrade knows the service), idle (no window open), garbage (not an event).", "kind"),
		shed:      d("shed_total", "Windows or upgrades the health watcher did not follow because a cap was reached."),
		rollbacks: d("rollback_requests_total", "Rollback requests the health watcher published."),
		verdicts:  d("verdicts_total", "Verdicts the health watcher published, by verdict.", "verdict"),
		windows:   d("windows", "Watch windows open or waiting to open."),
		upgrades:  d("upgrades_followed", "Upgrades the health watcher follows now."),
		buffered:  d("buffered_signals", "Signals held as evidence, all windows together."),
		lag:       d("lag_messages", "Stream messages the health watcher has yet to read."),
		outbox:    d("outbox_events", "Verdicts and rollback requests waiting to be published again."),
	}
}

// Describe implements prometheus.Collector.
func (c *verdictCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.signals, c.shed, c.rollbacks, c.verdicts, c.windows, c.upgrades, c.buffered, c.lag, c.outbox} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *verdictCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter(c.signals, s.Signals, "counted")
	counter(c.signals, s.Unknown, "unknown")
	counter(c.signals, s.Idle, "idle")
	counter(c.signals, s.Garbage, "garbage")
	counter(c.shed, s.Shed)
	counter(c.rollbacks, s.Rollbacks)
	for _, v := range []string{"healthy", "failing", "inconclusive"} {
		counter(c.verdicts, s.Verdicts[v], v)
	}
	gauge(c.windows, float64(s.Windows))
	gauge(c.upgrades, float64(s.Upgrades))
	gauge(c.buffered, float64(s.Buffered))
	gauge(c.lag, float64(s.Lag))
	gauge(c.outbox, float64(s.Outbox))
}

// webhookCollector reads the webhook notifier's counters at each scrape.
type webhookCollector struct {
	stats                   func() notify.Stats
	events, retries, queued *prometheus.Desc
}

func newWebhookCollector(stats func() notify.Stats) *webhookCollector {
	return &webhookCollector{
		stats: stats,
		events: prometheus.NewDesc("cutover_webhook_events_total",
			"Webhook events by outcome: delivered, gave_up (retries exhausted), rejected (4xx), dropped (queue full).", []string{"result"}, nil),
		retries: prometheus.NewDesc("cutover_webhook_retries_total", "Webhook POSTs made again after a failure.", nil, nil),
		queued:  prometheus.NewDesc("cutover_webhook_queued_events", "Webhook events waiting to be posted, all URLs together.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.retries
	ch <- c.queued
}

// Collect implements prometheus.Collector.
func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for result, v := range map[string]uint64{"delivered": s.Delivered, "gave_up": s.GaveUp, "rejected": s.Rejected, "dropped": s.Dropped} {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(v), result)
	}
	ch <- prometheus.MustNewConstMetric(c.retries, prometheus.CounterValue, float64(s.Retries))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
}
