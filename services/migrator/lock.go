package migrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// ErrLockHeld is wrapped by the error of a request whose database another
// migration holds; the request is redelivered later.
var ErrLockHeld = errors.New("database is locked by another migration")

// LockKey returns the key of a database's lock in the cutover-locks bucket:
// "migration." and the SHA-256 of the database's Key, so any location fits
// the key alphabet.
func LockKey(databaseKey string) string {
	sum := sha256.Sum256([]byte(databaseKey))
	return "migration." + hex.EncodeToString(sum[:])
}

// lockValue is stored under a held lock, for the operator who finds it.
type lockValue struct {
	Holder   string    `json:"holder"`
	Request  string    `json:"request"`
	Database string    `json:"database"`
	Since    time.Time `json:"since"`
}

// dbLock is a held per-database lock. A goroutine refreshes it until release,
// so that other migrators can tell a live holder from a crashed one by the
// age of the entry's last revision.
type dbLock struct {
	kv    jetstream.KeyValue
	key   string
	value []byte
	every time.Duration
	log   *slog.Logger

	mu  sync.Mutex
	rev uint64

	stop chan struct{}
	done chan struct{}
}

// lock takes the lock of a database, or takes over a lock whose holder has
// not refreshed it for LockStaleAfter. A live holder gives an error wrapping
// ErrLockHeld.
func (m *Migrator) lock(ctx context.Context, db Database, database, requestID string, log *slog.Logger) (*dbLock, error) {
	key := LockKey(db.Key())
	value, err := json.Marshal(lockValue{Holder: m.instance, Request: requestID, Database: database, Since: time.Now().UTC()})
	if err != nil {
		return nil, fmt.Errorf("encode lock of %s: %w", database, err)
	}
	rev, err := m.locks.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		rev, err = m.takeOverStale(ctx, key, value, database, log)
	}
	if err != nil {
		return nil, err
	}
	l := &dbLock{kv: m.locks, key: key, value: value, every: m.cfg.LockRefresh, log: log, rev: rev,
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.refresh()
	log.Debug("locked database", "lock", key)
	return l, nil
}

// takeOverStale replaces a lock entry older than LockStaleAfter, with a
// compare-and-swap on its revision so that one migrator wins.
func (m *Migrator) takeOverStale(ctx context.Context, key string, value []byte, database string, log *slog.Logger) (uint64, error) {
	entry, err := m.locks.Get(ctx, key)
	if events.IsNotFound(err) {
		return 0, fmt.Errorf("%w: %s was released just now; retrying", ErrLockHeld, database)
	}
	if err != nil {
		return 0, fmt.Errorf("read lock %s of %s: %w", key, database, err)
	}
	var held lockValue
	_ = json.Unmarshal(entry.Value(), &held) // only for the messages
	age := time.Since(entry.Created())
	if age < m.cfg.LockStaleAfter {
		return 0, fmt.Errorf("%w: %s is being migrated by %s for request %s (lock %s refreshed %v ago); retrying later",
			ErrLockHeld, database, held.Holder, held.Request, key, age.Round(time.Millisecond))
	}
	rev, err := m.locks.Update(ctx, key, value, entry.Revision())
	if err != nil {
		return 0, fmt.Errorf("%w: take over stale lock %s of %s: %v", ErrLockHeld, key, database, err)
	}
	log.Warn("took over a stale migration lock; its holder stopped refreshing it", "lock", key, "holder", held.Holder, "holder_request", held.Request, "age", age.Round(time.Millisecond))
	return rev, nil
}

func (l *dbLock) refresh() {
	defer close(l.done)
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		rev := l.rev
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), l.every)
		next, err := l.kv.Update(ctx, l.key, l.value, rev)
		cancel()
		if err != nil {
			// Another migrator may take the lock over once it looks stale;
			// nothing here can stop the migration safely, so say it loudly.
			l.log.Error("refresh migration lock; another migrator may take it over", "lock", l.key, "err", err)
			continue
		}
		l.mu.Lock()
		l.rev = next
		l.mu.Unlock()
	}
}

// release stops refreshing and deletes the lock if this migrator still holds
// it. A failure leaves a lock that goes stale after LockStaleAfter.
func (l *dbLock) release(ctx context.Context) {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		l.log.Warn("release migration lock; it will go stale", "lock", l.key, "err", err)
		return
	}
	l.log.Debug("unlocked database", "lock", l.key)
}

// prepare opens a request's database with its migration source and takes
// the database's lock. refused says why the request cannot be served (no
// such driver, an unreadable source, a database that does not open): the
// caller answers migration.failed with the database untouched. err is the
// lock's error, for a redelivery. done releases everything, in reverse.
func (m *Migrator) prepare(ctx context.Context, driver, source, location, database, requestID string, log *slog.Logger) (db Database, done func(), refused, err error) {
	drv, err := m.driver(driver)
	if err != nil {
		return nil, nil, err, nil
	}
	dir, cleanup, err := m.fetchSource(ctx, source)
	if err != nil {
		return nil, nil, err, nil
	}
	db, err = drv.Open(ctx, location, dir)
	if err != nil {
		cleanup()
		return nil, nil, err, nil
	}
	lock, err := m.lock(ctx, db, database, requestID, log)
	if err != nil {
		_ = db.Close()
		cleanup()
		return nil, nil, nil, err
	}
	return db, func() {
		lock.release(context.WithoutCancel(ctx))
		_ = db.Close()
		cleanup()
	}, nil, nil
}

// prepareRun is prepare for a migration request, with the request's
// snapshot method set on the database; an unknown method is refused like
// the rest (the database untouched).
func (m *Migrator) prepareRun(ctx context.Context, req events.MigrationRequested, source, database, requestID string, log *slog.Logger) (db Database, done func(), refused, err error) {
	db, done, refused, err = m.prepare(ctx, req.Driver, source, req.Database, database, requestID, log)
	if refused != nil || err != nil || req.SnapshotMethod == "" {
		return db, done, refused, err
	}
	if err := setSnapshotMethod(db, req.SnapshotMethod); err != nil {
		done()
		return nil, nil, err, nil
	}
	return db, done, nil, nil
}

// begun is a database prepared for a migration request and the version it
// was found at when the run started.
type begun struct {
	db      Database
	release func()
	from    uint
	dirty   bool
	started time.Time
}

// beginRun prepares the request's database (prepareRun) and reads its
// version. A refusal, or a version it cannot read, is answered with fail,
// the database untouched; then, as when the lock is not taken, beginRun
// returns nil and the error its caller returns.
func (m *Migrator) beginRun(ctx context.Context, req events.MigrationRequested, source, database, requestID string, log *slog.Logger,
	fail func(events.MigrationFailed) error) (*begun, error) {
	db, release, refused, err := m.prepareRun(ctx, req, source, database, requestID, log)
	if refused != nil {
		return nil, fail(events.MigrationFailed{Error: refused.Error(), State: "unchanged: the migrator did not touch the database"})
	}
	if err != nil {
		return nil, err
	}
	started := time.Now()
	from, dirty, err := db.Version(ctx)
	if err != nil {
		defer release() // after the answer, as for every other failure of the run
		return nil, fail(events.MigrationFailed{Error: err.Error(), State: "unknown: the migrator could not read the version; check the database"})
	}
	return &begun{db: db, release: release, from: from, dirty: dirty, started: started}, nil
}
