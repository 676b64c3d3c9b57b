package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/notify"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

// DefaultScrapeTimeout bounds the JetStream consumer listing of one scrape
// when Config.ScrapeTimeout is zero: a slow or unreachable NATS server costs
// a scrape error, never a hung scrape.
const DefaultScrapeTimeout = 2 * time.Second

// InterruptionBuckets are the buckets of cutover_interruption_seconds: from
// a network agent's blip to a slow service restart.
var InterruptionBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120}

// Streams is what Metrics needs from JetStream to read consumer lag; a
// jetstream.JetStream is one.
type Streams interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// Config configures a Metrics. Every field is optional.
type Config struct {
	// JetStream, when set, is read at each scrape for the lag of every
	// durable consumer of the CUTOVER stream.
	JetStream Streams
	// ScrapeTimeout bounds that read (default DefaultScrapeTimeout).
	ScrapeTimeout time.Duration
	// Verdicts, when set, is read at each scrape for the health watcher's
	// counters (pass (*verdict.Watcher).Stats).
	Verdicts func() verdict.WatcherStats
	// Webhooks, when set, is read at each scrape for the webhook
	// notifier's counters (pass (*notify.Notifier).Stats).
	Webhooks func() notify.Stats
	// Logger receives scrape errors at Warn (default slog.Default()).
	Logger *slog.Logger
}

// Metrics counts the events the auditor stores and serves them, with
// consumer lag and the health watcher's counters, to Prometheus. Its
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	upgrades     *prometheus.GaugeVec
	replacements *prometheus.CounterVec
	interruption prometheus.Histogram
	rollbacks    *prometheus.CounterVec
	eventsTotal  *prometheus.CounterVec
	rejected     prometheus.Counter

	mu     sync.Mutex
	states map[string]upgradeState // upgrade id -> newest lifecycle event seen
}

type upgradeState struct {
	state auditor.State
	at    time.Time
	seq   uint64 // stream sequence of the event that set the state; 0 when seeded
}

var _ auditor.Observer = (*Metrics)(nil)

// New returns a Metrics with every metric registered, starting from zero.
// Call Seed before the auditor starts so cutover_upgrades covers the
// upgrades already stored.
func New(cfg Config) *Metrics {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ScrapeTimeout <= 0 {
		cfg.ScrapeTimeout = DefaultScrapeTimeout
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: cfg.Logger.With("component", "metrics"),
		upgrades: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_upgrades",
			Help: "Upgrades by their current state, as the auditor's history shows it.",
		}, []string{"state"}),
		replacements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_container_replacements_total",
			Help: "Container updates by result: replaced, unchanged or reverted.",
		}, []string{"result"}),
		interruption: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cutover_interruption_seconds",
			Help:    "Measured interruption of each replaced container, from old stopped to new healthy.",
			Buckets: InterruptionBuckets,
		}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_rollbacks_total",
			Help: "Rollbacks by result: requested, completed or failed.",
		}, []string{"result"}),
		eventsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_events_total",
			Help: "Events stored by the auditor, by CloudEvents type (\"other\" for types outside the catalog).",
		}, []string{"type"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_rejected_events_total",
			Help: "Messages a cutover consumer refused (dev.cutover.event.rejected events stored).",
		}),
		states: map[string]upgradeState{},
	}
	// Every state and result is exported from the start, at 0, so a query
	// or alert on a value not seen yet has a series to read.
	for _, s := range allStates {
		m.upgrades.WithLabelValues(string(s))
	}
	for _, r := range []string{events.ResultReplaced, events.ResultUnchanged, events.ResultReverted} {
		m.replacements.WithLabelValues(r)
	}
	for _, r := range []string{"requested", "completed", "failed"} {
		m.rollbacks.WithLabelValues(r)
	}
	m.reg.MustRegister(m.upgrades, m.replacements, m.interruption, m.rollbacks, m.eventsTotal, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.JetStream != nil {
		m.reg.MustRegister(newLagCollector(cfg.JetStream, cfg.ScrapeTimeout, m.log))
	}
	if cfg.Verdicts != nil {
		m.reg.MustRegister(newVerdictCollector(cfg.Verdicts))
	}
	if cfg.Webhooks != nil {
		m.reg.MustRegister(newWebhookCollector(cfg.Webhooks))
	}
	return m
}

var allStates = []auditor.State{
	auditor.StateUnknown, auditor.StateRequested, auditor.StatePlanned, auditor.StateRunning,
	auditor.StateCompleted, auditor.StateFailed, auditor.StatePaused, auditor.StateAborted,
	auditor.StateRolledBack, auditor.StateRollbackFailed,
}

// Registry returns the registry holding every metric, to add more
// collectors (e.g. the webhook notifier's) or gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogErrorLog{m.log}, ErrorHandling: promhttp.ContinueOnError})
}

// Seed sets cutover_upgrades from the upgrades already in h. Call it once,
// before the auditor starts: records stored later are counted by Observe.
func (m *Metrics) Seed(ctx context.Context, h auditor.History) error {
	list, err := h.Upgrades(ctx)
	if err != nil {
		return fmt.Errorf("seed upgrade metrics from the history: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range list {
		if u.State == auditor.StateUnknown {
			// Only non-lifecycle events so far: a later lifecycle event of
			// any time must win, as it would in the store.
			m.setLocked(u.ID, upgradeState{state: u.State})
			continue
		}
		m.setLocked(u.ID, upgradeState{state: u.State, at: u.LastTime})
	}
	return nil
}

// Observe counts one record the auditor stored for the first time.
func (m *Metrics) Observe(r auditor.Record) {
	typ := r.Type
	if _, ok := events.Lookup(typ); !ok {
		typ = "other" // bound the label's cardinality: anyone may publish
	}
	m.eventsTotal.WithLabelValues(typ).Inc()
	switch r.Type {
	case events.TypeEventRejected:
		m.rejected.Inc()
	case events.TypeContainerReplaced:
		var d events.ContainerReplaced
		if dataOf(r, &d) != nil {
			return
		}
		switch d.Result {
		case events.ResultReplaced, events.ResultUnchanged:
			m.replacements.WithLabelValues(d.Result).Inc()
		}
		if d.Result == events.ResultReplaced && d.InterruptionMs >= 0 {
			m.interruption.Observe(float64(d.InterruptionMs) / 1000)
		}
	case events.TypeContainerReverted:
		m.replacements.WithLabelValues(events.ResultReverted).Inc()
	case events.TypeRollbackRequested:
		m.rollbacks.WithLabelValues("requested").Inc()
	case events.TypeRollbackCompleted:
		var d events.RollbackCompleted
		if dataOf(r, &d) == nil && d.Result == "failed" {
			m.rollbacks.WithLabelValues("failed").Inc()
		} else {
			m.rollbacks.WithLabelValues("completed").Inc()
		}
	}
	if r.UpgradeID == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, known := m.states[r.UpgradeID]
	if !isLifecycle(r.Type) {
		if !known {
			m.setLocked(r.UpgradeID, upgradeState{state: auditor.StateUnknown})
		}
		return
	}
	// The store derives the state from the newest lifecycle event in stream
	// order; an older one arriving late (a redelivery after a restart) does
	// not move the state back. Without both sequences (a state seeded from
	// the store), the stream's timestamps decide.
	if known && cur.state != auditor.StateUnknown {
		if r.Sequence != 0 && cur.seq != 0 {
			if r.Sequence < cur.seq {
				return
			}
		} else if r.Time.Before(cur.at) {
			return
		}
	}
	var raw struct {
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(r.Event, &raw)
	m.setLocked(r.UpgradeID, upgradeState{state: auditor.StateOf(r.Type, raw.Data), at: r.Time, seq: r.Sequence})
}

func (m *Metrics) setLocked(id string, s upgradeState) {
	if old, ok := m.states[id]; ok {
		m.upgrades.WithLabelValues(string(old.state)).Dec()
	}
	m.states[id] = s
	m.upgrades.WithLabelValues(string(s.state)).Inc()
}

var lifecycleTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range auditor.LifecycleTypes() {
		m[t] = true
	}
	return m
}()

func isLifecycle(typ string) bool { return lifecycleTypes[typ] }

// dataOf decodes the data of a stored record's CloudEvent into v.
func dataOf(r auditor.Record, v any) error {
	var raw struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.Event, &raw); err != nil {
		return fmt.Errorf("decode stored event %s: %w", r.ID, err)
	}
	if len(raw.Data) == 0 {
		return errors.New("decode stored event " + r.ID + ": no data")
	}
	if err := json.Unmarshal(raw.Data, v); err != nil {
		return fmt.Errorf("decode data of stored event %s (%s): %w", r.ID, r.Type, err)
	}
	return nil
}

// slogErrorLog adapts a slog.Logger to promhttp's error log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) { l.log.Warn("serve metrics", "err", fmt.Sprint(v...)) }
