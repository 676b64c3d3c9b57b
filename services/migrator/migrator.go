package migrator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// Durable is the name of the migrator's JetStream consumer.
const Durable = "migrator"

// Config configures a Migrator.
type Config struct {
	// Logger receives lifecycle logs at Info and per-request logs at Debug
	// (default slog.Default()).
	Logger *slog.Logger
	// Drivers maps the driver names of requests ("sqlite") to their
	// implementation. A request for a driver not in the map fails with a
	// migration.failed event; main wires the available ones.
	Drivers map[string]Driver
	// LockStaleAfter is how long a per-database lock that its holder stopped
	// refreshing blocks other migrators (default 2m). A migrator that crashed
	// mid-migration thus blocks the database for that long, no longer.
	LockStaleAfter time.Duration
	// LockRefresh is how often a held lock is refreshed (default
	// LockStaleAfter/4); it must be well under LockStaleAfter.
	LockRefresh time.Duration
	// MaxDeliver bounds deliveries of one request (default 30). A request
	// that finds its database locked is redelivered with a backoff capped at
	// 30s, so the default waits about 13 minutes for another migration of the
	// same database to finish before giving up.
	MaxDeliver int
	// RequireDown refuses, before anything runs, a migration request whose
	// migrations lack a down file (default false: a rollback past them goes
	// through the snapshot instead).
	RequireDown bool
	// KeepSnapshots is how many snapshots of each database are kept: after
	// a successful migration the older ones are dropped (default
	// DefaultKeepSnapshots; KeepAllSnapshots keeps every one). The snapshot
	// a migration just took always stays.
	KeepSnapshots int
	// Images copies migration sources named "image:<ref>[#/dir]" out of
	// images (the image subpackage, through the registry). Nil refuses such
	// sources with a clear error.
	Images SourceFetcher
	// Commands runs command migrations (requests with a command: a one-off
	// container from the service's new image; the docker subpackage). Nil
	// refuses them with a clear error.
	Commands CommandRunner
	// Databases, when not nil, is the allow-list of databases by id
	// (migrator --databases): a request must name one (database_id) and
	// the location configured here is used, never the request's. Nil
	// accepts the location a request carries (tests, cutover dev without
	// an inventory); the migrator binary requires an allow-list unless
	// --allow-any-database is given.
	Databases map[string]AllowedDatabase
}

func (c *Config) setDefaults() {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.LockStaleAfter = cmp.Or(c.LockStaleAfter, 2*time.Minute)
	c.LockRefresh = cmp.Or(c.LockRefresh, c.LockStaleAfter/4)
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 30)
	c.KeepSnapshots = cmp.Or(c.KeepSnapshots, DefaultKeepSnapshots)
}

// DefaultKeepSnapshots is how many snapshots of each database the migrator
// keeps when Config.KeepSnapshots is 0.
const DefaultKeepSnapshots = 3

// KeepAllSnapshots, as Config.KeepSnapshots, turns retention off: every
// snapshot stays until `cutover snapshots prune`.
const KeepAllSnapshots = -1

// Validate returns every problem with the config at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Drivers) == 0 {
		errs = append(errs, errors.New("migrator config: no database drivers; wire at least sqlite (migrator/sqlite)"))
	}
	for name, d := range c.Drivers {
		if d == nil {
			errs = append(errs, fmt.Errorf("migrator config: driver %q is nil", name))
		}
	}
	if c.LockStaleAfter < 0 || c.LockRefresh <= 0 || c.LockRefresh*2 > c.LockStaleAfter {
		errs = append(errs, fmt.Errorf("migrator config: lock refresh %v must be positive and at most half of lock stale-after %v", c.LockRefresh, c.LockStaleAfter))
	}
	if c.KeepSnapshots < KeepAllSnapshots {
		errs = append(errs, fmt.Errorf("migrator config: keep snapshots %d must be -1 (keep all), 0 (default %d) or more", c.KeepSnapshots, DefaultKeepSnapshots))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("migrator config: max deliver %d must be at least 1", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

// Migrator handles migration and rollback requests.
type Migrator struct {
	cfg      Config
	js       jetstream.JetStream
	pub      *events.Publisher
	log      *slog.Logger
	instance string // names this process in lock values

	mu        sync.Mutex
	consumer  *events.Consumer // nil until Start, and after Close
	locks     jetstream.KeyValue
	processed jetstream.KeyValue
}

// New returns a Migrator on js. It does nothing until Start.
func New(cfg Config, js jetstream.JetStream) (*Migrator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("new migrator: JetStream is nil; connect to NATS first")
	}
	host, _ := os.Hostname()
	return &Migrator{
		cfg:      cfg,
		js:       js,
		pub:      events.NewPublisher(js),
		log:      cfg.Logger.With("service", "migrator"),
		instance: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8]),
	}, nil
}

// Start opens the lock and processed buckets and consumes requests until
// Close. The stream and buckets must exist (events.Setup).
func (m *Migrator) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.consumer != nil {
		return errors.New("start migrator: already started")
	}
	locks, err := m.js.KeyValue(ctx, events.BucketLocks)
	if err != nil {
		return fmt.Errorf("start migrator: open KV bucket %s: %w (run events.Setup first)", events.BucketLocks, err)
	}
	processed, err := m.js.KeyValue(ctx, events.BucketProcessed)
	if err != nil {
		return fmt.Errorf("start migrator: open KV bucket %s: %w (run events.Setup first)", events.BucketProcessed, err)
	}
	m.locks, m.processed = locks, processed
	c, err := events.Consume(ctx, m.js, events.ConsumerConfig{
		Durable:        Durable,
		FilterSubjects: []string{events.SubjectMigrationCmd},
		Service:        "migrator",
		MaxDeliver:     m.cfg.MaxDeliver,
		Processed:      processed,
		Logger:         m.log,
	}, m.handle)
	if err != nil {
		return fmt.Errorf("start migrator: %w", err)
	}
	m.consumer = c
	m.log.Info("migrator started", "instance", m.instance)
	return nil
}

// Close stops consuming. A migration in progress is not interrupted: Close
// waits for it to finish and for its outcome to be published, even past ctx,
// because a migration stopped midway would leave the database dirty.
func (m *Migrator) Close(ctx context.Context) error {
	m.mu.Lock()
	c := m.consumer
	m.consumer = nil
	m.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := c.Close(ctx); err != nil {
		return fmt.Errorf("close migrator: %w", err)
	}
	m.log.Info("migrator stopped")
	return nil
}

// handle dispatches one request. A nil return acks it; events.Permanent
// rejects it; any other error redelivers it later.
func (m *Migrator) handle(ctx context.Context, e events.Event) error {
	switch e.Type() {
	case events.TypeMigrationRequested, events.TypeMigrationRollbackRequested, events.TypeMigrationStatusRequested:
	default:
		return events.Permanent(fmt.Errorf("the migrator handles %s, %s and %s, not %s", events.TypeMigrationRequested, events.TypeMigrationRollbackRequested, events.TypeMigrationStatusRequested, e.Type()))
	}
	if done, err := m.republishOutcome(ctx, e); done || err != nil {
		return err
	}
	switch e.Type() {
	case events.TypeMigrationRequested:
		req, err := events.DataAs[events.MigrationRequested](e)
		if err != nil {
			return err
		}
		if err := m.allow(req.DatabaseID, &req.Driver, &req.Database); err != nil {
			return err
		}
		return m.migrate(ctx, e, req)
	case events.TypeMigrationStatusRequested:
		req, err := events.DataAs[events.MigrationStatusRequested](e)
		if err != nil {
			return err
		}
		if err := m.allow(req.DatabaseID, &req.Driver, &req.Database); err != nil {
			return err
		}
		return m.status(ctx, e, req)
	default:
		req, err := events.DataAs[events.MigrationRollbackRequested](e)
		if err != nil {
			return err
		}
		if err := m.allow(req.DatabaseID, &req.Driver, &req.Database); err != nil {
			return err
		}
		return m.rollback(ctx, e, req)
	}
}

// driver returns the driver of a request, or the reason there is none.
func (m *Migrator) driver(name string) (Driver, error) {
	if d, ok := m.cfg.Drivers[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("driver %q is not wired in this migrator; start it with that driver enabled", name)
}
