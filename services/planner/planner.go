package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cutover-dev/cutover/events"
)

// verifySteps makes the store check every save for steps changed in place
// (see Upgrade.edit); the package's tests set it.
var verifySteps bool

// Planner turns upgrade requests into plans and drives them wave by wave.
type Planner struct {
	cfg      Config
	machine  machine
	byType   map[string]events.Handler // handlers(), built once
	js       jetstream.JetStream
	pub      *events.Publisher
	store    *store
	nodes    jetstream.KeyValue
	locks    jetstream.KeyValue
	consumer *events.Consumer
	log      *slog.Logger
	stop     context.CancelFunc
	done     chan struct{}

	// leading says this instance holds the lease and runs the consumer.
	leading atomic.Bool
	lease   lease
	// runStop and runDone own the lease goroutine.
	runStop context.CancelFunc
	runDone chan struct{}
}

// New returns a Planner on js. The stream and buckets must exist (events.Setup).
func New(ctx context.Context, cfg Config, js jetstream.JetStream) (*Planner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Planner{cfg: cfg, machine: newMachine(cfg), js: js, pub: events.NewPublisher(js), log: cfg.Logger.With("service", "planner")}
	p.lease.id = leaseID(cfg.InstanceID, nuid.Next())
	for name, dst := range map[string]*jetstream.KeyValue{events.BucketNodes: &p.nodes, events.BucketLocks: &p.locks} {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w (run events.Setup first)", name, err)
		}
		*dst = kv
	}
	kv, err := js.KeyValue(ctx, events.BucketUpgrades)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", events.BucketUpgrades, err)
	}
	p.store = &store{kv: kv, verify: verifySteps}
	return p, nil
}

// lead publishes what earlier runs decided but did not publish, then starts
// the durable consumer and the deadline watcher. Events that arrived while
// no planner led wait in the stream and are handled in order.
func (p *Planner) lead(ctx context.Context) error {
	p.store.reset() // another leader may have written since this one last led
	ids, err := p.store.ids(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		u, rev, err := p.store.get(ctx, id)
		if err != nil {
			return err
		}
		if len(u.Outbox) > 0 || len(u.pending) > 0 {
			p.log.Info("resuming upgrade: publishing pending events", "upgrade", id, "events", len(u.Outbox), "steps", len(u.pending))
			if _, err := p.flush(ctx, u, rev); err != nil {
				return err
			}
		}
		if u.Final() {
			p.store.forget(id, 0)
		}
	}
	processed, err := p.js.KeyValue(ctx, events.BucketProcessed)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", events.BucketProcessed, err)
	}
	p.byType = p.handlers()
	p.consumer, err = events.Consume(ctx, p.js, events.ConsumerConfig{
		Durable: "planner",
		// One filter for the whole stream, not one per subject the planner
		// reads: the server serves a consumer with several filters by
		// intersecting them with every subject in the stream, which at
		// thousands of nodes (three subjects each) cost more than the
		// planner's own work. Types drops the rest (commands, progress,
		// heartbeats) before any KV round trip.
		FilterSubjects: []string{events.SubjectAll},
		Service:        "planner",
		Processed:      processed,
		Types:          slices.Collect(maps.Keys(p.byType)),
		AckWait:        p.cfg.AckWait,
		Logger:         p.log,
	}, p.handle)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stop, p.done = cancel, make(chan struct{})
	go p.watchDeadlines(wctx)
	p.leading.Store(true)
	return nil
}

// stepDown stops the consumer and the deadline watcher, letting the event
// in progress finish until ctx is done.
func (p *Planner) stepDown(ctx context.Context) error {
	if !p.leading.Swap(false) {
		return nil
	}
	var errs []error
	p.stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("stop planner deadline watcher: %w", ctx.Err()))
	}
	if err := p.consumer.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	p.consumer = nil
	return errors.Join(errs...)
}

// Close stops the lease goroutine and, on the leader, the consumer (letting
// the event in progress finish until ctx is done), then releases the lease
// so a standby takes over at once.
func (p *Planner) Close(ctx context.Context) error {
	if p.runStop != nil {
		p.runStop()
		<-p.runDone
		p.runStop = nil
	}
	leading := p.leading.Load()
	err := p.stepDown(ctx)
	if leading {
		p.releaseLease(context.WithoutCancel(ctx))
	}
	return err
}
