package auditor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// Durable is the name of the auditor's JetStream consumer. It survives
// restarts, so a new auditor resumes where the last one stopped.
const Durable = "auditor"

// Store is what the auditor's consumer needs from a history store.
type Store interface {
	// Append stores r unless a record with its id exists, and reports
	// whether it inserted it. Appending the same record twice is not an error.
	Append(ctx context.Context, r Record) (inserted bool, err error)
}

// History is what the HTTP API needs from a history store.
type History interface {
	// Upgrades returns one summary per upgrade id, newest first.
	Upgrades(ctx context.Context) ([]UpgradeSummary, error)
	// Upgrade returns the summary of one upgrade, or an error wrapping
	// ErrUpgradeNotFound when no stored event carries its id.
	Upgrade(ctx context.Context, id string) (UpgradeSummary, error)
	// Events returns the records of one upgrade ordered by time, then id.
	Events(ctx context.Context, upgradeID string) ([]Record, error)
}

// Config configures an Auditor.
type Config struct {
	// Logger receives lifecycle logs at Info and per-event logs at Debug
	// (default slog.Default()).
	Logger *slog.Logger
	// Hub, when set, receives each record once it is stored for the first
	// time (the dashboard's live view).
	Hub *Hub
	// Observers, when set, are told of each record once it is stored for
	// the first time, in stream order, on the consumer's goroutine: they
	// must not block (metrics.Metrics counts, notify.Notifier enqueues).
	Observers []Observer
	// SignalRetention is how long the history keeps heartbeats and health
	// signals that carry no upgrade id (default DefaultSignalRetention; a
	// negative value keeps them for good). An upgrade's events are never
	// deleted. The store must implement Pruner.
	SignalRetention time.Duration
	// PruneEvery is how often older signals are deleted (default
	// DefaultPruneEvery).
	PruneEvery time.Duration
}

// Observer is told of each record the auditor stores for the first time.
// A redelivered or republished event that is already stored is not
// observed again, so counters built on Observe count each event once.
type Observer interface {
	// Observe is called on the auditor's consumer goroutine and must not
	// block or fail.
	Observe(r Record)
}

func (c *Config) setDefaults() {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.SignalRetention = cmp.Or(c.SignalRetention, DefaultSignalRetention)
	if c.PruneEvery <= 0 {
		c.PruneEvery = DefaultPruneEvery
	}
}

// Validate returns every problem with the config at once, each naming the
// field and the fix. New calls it.
func (c *Config) Validate() error {
	var errs []error
	for i, o := range c.Observers {
		if o == nil {
			errs = append(errs, fmt.Errorf("auditor config: observer %d is nil; remove it, or pass the metrics or notifier it stands for", i))
		}
	}
	return errors.Join(errs...)
}

// Auditor stores every event of the CUTOVER stream in a Store, and deletes
// heartbeats and health signals older than its signal retention.
type Auditor struct {
	js    jetstream.JetStream
	store Store
	hub   *Hub
	obs   []Observer
	log   *slog.Logger
	now   func() time.Time
	prune *pruner // nil when signals are kept for good

	mu       sync.Mutex
	consumer *events.Consumer // nil until Start, and after Close
}

// New returns an Auditor that reads js and writes store. It does nothing
// until Start.
func New(cfg Config, js jetstream.JetStream, store Store) (*Auditor, error) {
	cfg.setDefaults()
	errs := []error{cfg.Validate()}
	if js == nil {
		errs = append(errs, errors.New("new auditor: JetStream is nil; connect to NATS first"))
	}
	if store == nil {
		errs = append(errs, errors.New("new auditor: store is nil; open a history store (auditor/sqlite) first"))
	}
	pr, canPrune := store.(Pruner)
	if store != nil && cfg.SignalRetention > 0 && !canPrune {
		errs = append(errs, fmt.Errorf("new auditor: store %T cannot prune heartbeats and health signals; give a negative signal retention to keep them for good", store))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a := &Auditor{js: js, store: store, hub: cfg.Hub, obs: cfg.Observers, log: cfg.Logger.With("service", "auditor"), now: time.Now}
	if cfg.SignalRetention > 0 {
		a.prune = &pruner{store: pr, retention: cfg.SignalRetention, every: cfg.PruneEvery, now: func() time.Time { return a.now() }, log: a.log}
	}
	return a, nil
}

// Start creates or resumes the durable consumer and stores events until
// Close. The stream must exist (events.Setup).
func (a *Auditor) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.consumer != nil {
		return errors.New("start auditor: already started")
	}
	c, err := events.Consume(ctx, a.js, events.ConsumerConfig{
		Durable:        Durable,
		FilterSubjects: []string{events.SubjectAll},
		Service:        "auditor",
		Logger:         a.log,
	}, a.handle)
	if err != nil {
		return fmt.Errorf("start auditor: %w", err)
	}
	a.consumer = c
	if a.prune != nil {
		a.prune.start()
	}
	a.log.Info("auditor started", "signal_retention", a.retention())
	return nil
}

// retention says how long heartbeats and health signals are kept, for logs.
func (a *Auditor) retention() string {
	if a.prune == nil {
		return "for good"
	}
	return a.prune.retention.String()
}

// Close stops consuming. The event being stored, if any, is finished until
// ctx is done; after that it is abandoned and redelivered to the next
// auditor. Close does not close the store: its opener does.
func (a *Auditor) Close(ctx context.Context) error {
	a.mu.Lock()
	c := a.consumer
	a.consumer = nil
	a.mu.Unlock()
	if c == nil {
		return nil
	}
	if a.prune != nil {
		a.prune.stop()
	}
	if err := c.Close(ctx); err != nil {
		return fmt.Errorf("close auditor: %w", err)
	}
	a.log.Info("auditor stopped")
	return nil
}

// handle stores one event. A store error is transient: the consume helper
// redelivers the event after a backoff.
func (a *Auditor) handle(ctx context.Context, e events.Event) error {
	r, err := RecordOf(e, a.now())
	if err != nil {
		return events.Permanent(err)
	}
	if mi, ok := events.MsgInfoFrom(ctx); ok {
		r = r.InStream(mi.Sequence, mi.Timestamp)
	}
	inserted, err := a.store.Append(ctx, r)
	if err != nil {
		return fmt.Errorf("store event %s (%s): %w", e.ID(), e.Type(), err)
	}
	a.log.Debug("stored event", "id", e.ID(), "type", e.Type(), "upgrade", r.UpgradeID, "inserted", inserted)
	if !inserted {
		return nil
	}
	if a.hub != nil {
		a.hub.Publish(r)
	}
	for _, o := range a.obs {
		o.Observe(r)
	}
	return nil
}
