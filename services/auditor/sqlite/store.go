package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	sqlrows "github.com/cutover-dev/cutover/services/auditor/internal/rows"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the auditor's history in one SQLite file.
type Store struct {
	path   string
	writer *sql.DB // one connection: SQLite has one writer at a time anyway
	reader *sql.DB // read-only connections for queries
}

var (
	_ auditor.Store   = (*Store)(nil)
	_ auditor.History = (*Store)(nil)
	_ auditor.Pruner  = (*Store)(nil)
)

// busyTimeout is how long a connection waits for a lock held by another one
// (a checkpoint, or a second process on the same file) before failing.
const busyTimeout = 5 * time.Second

// Open opens or creates the history at path and brings its schema to the
// latest version.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open audit store %q: %w", path, err)
	}
	if err := migrateSchema(abs); err != nil {
		return nil, err
	}
	writer, err := openDB(ctx, abs, false)
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	reader, err := openDB(ctx, abs, true)
	if err != nil {
		_ = writer.Close()
		return nil, err
	}
	reader.SetMaxOpenConns(4)
	return &Store{path: abs, writer: writer, reader: reader}, nil
}

// dsn returns a modernc DSN for path. A file: URI escapes characters such as
// '?' or '#' that a bare path would lose to the query string.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	if readOnly {
		// The writer set WAL mode in the file already; readers only read.
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	return u.String()
}

func openDB(ctx context.Context, path string, readOnly bool) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, readOnly))
	if err != nil {
		return nil, fmt.Errorf("open audit store %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open audit store %s: %w (check the directory exists and is writable)", path, err)
	}
	return db, nil
}

// migrateSchema applies the embedded migrations on a connection of its own:
// closing golang-migrate closes the database it was given.
func migrateSchema(path string) error {
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		return fmt.Errorf("open audit store %s for schema migration: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	drv, err := migratesqlite.WithInstance(db, &migratesqlite.Config{})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("open audit store %s: %w (check the directory exists and is writable)", path, err)
	}
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("read embedded audit schema: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("prepare audit store %s schema: %w", path, err)
	}
	err = m.Up()
	srcErr, dbErr := m.Close()
	var dirty migrate.ErrDirty
	switch {
	case errors.As(err, &dirty):
		return fmt.Errorf("migrate audit store %s schema: version %d is dirty; restore the file from a backup or move it aside to start a new history: %w", path, dirty.Version, err)
	case err != nil && !errors.Is(err, migrate.ErrNoChange):
		return fmt.Errorf("migrate audit store %s schema: %w", path, err)
	}
	if err := errors.Join(srcErr, dbErr); err != nil {
		return fmt.Errorf("close audit store %s after schema migration: %w", path, err)
	}
	return nil
}

// Close closes the database connections.
func (s *Store) Close() error {
	if err := errors.Join(s.reader.Close(), s.writer.Close()); err != nil {
		return fmt.Errorf("close audit store %s: %w", s.path, err)
	}
	return nil
}

// Append stores r unless a record with its id exists, and reports whether it
// inserted it.
func (s *Store) Append(ctx context.Context, r auditor.Record) (bool, error) {
	res, err := s.writer.ExecContext(ctx, `
		INSERT INTO events (id, type, source, subject, upgradeid, nodeid, causationid, time, stored_at, event, seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Type, r.Source, r.Subject, r.UpgradeID, r.NodeID, r.CausationID,
		r.Time.UnixNano(), r.StoredAt.UnixNano(), string(r.Event), int64(r.Sequence))
	if err != nil {
		return false, fmt.Errorf("append event %s to %s: %w", r.ID, s.path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("append event %s to %s: %w", r.ID, s.path, err)
	}
	return n == 1, nil
}

// PruneSignals deletes at most limit heartbeats and health signals older
// than before that carry no upgrade id (auditor.SignalTypes), and returns
// how many it deleted.
func (s *Store) PruneSignals(ctx context.Context, before time.Time, limit int) (int, error) {
	types := auditor.SignalTypes()
	args := make([]any, 0, len(types)+2)
	for _, t := range types {
		args = append(args, t)
	}
	args = append(args, before.UnixNano(), limit)
	res, err := s.writer.ExecContext(ctx, `
		DELETE FROM events WHERE rowid IN (
			SELECT rowid FROM events WHERE type IN (`+strings.TrimSuffix(strings.Repeat("?,", len(types)), ",")+`)
			AND time < ? AND upgradeid = '' LIMIT ?)`, args...)
	if err != nil {
		return 0, fmt.Errorf("prune signals in %s: %w", s.path, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune signals in %s: %w", s.path, err)
	}
	return int(n), nil
}

// Count returns the number of stored events.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events in %s: %w", s.path, err)
	}
	return n, nil
}

// Events returns the records of one upgrade in stream order (then time and id, for rows stored before the sequence was).
func (s *Store) Events(ctx context.Context, upgradeID string) ([]auditor.Record, error) {
	rows, err := s.reader.QueryContext(ctx, `
		SELECT id, type, source, subject, upgradeid, nodeid, causationid, time, stored_at, event, seq
		FROM events WHERE upgradeid = ? ORDER BY seq, time, id`, upgradeID)
	if err != nil {
		return nil, fmt.Errorf("read events of upgrade %s from %s: %w", upgradeID, s.path, err)
	}
	out, err := sqlrows.Records(rows)
	if err != nil {
		return nil, fmt.Errorf("read events of upgrade %s from %s: %w", upgradeID, s.path, err)
	}
	return out, nil
}

// Upgrades returns one summary per upgrade id, the most recently started first.
func (s *Store) Upgrades(ctx context.Context) ([]auditor.UpgradeSummary, error) {
	out, err := s.summaries(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list upgrades in %s: %w", s.path, err)
	}
	return out, nil
}

// Upgrade returns the summary of one upgrade, or an error wrapping
// auditor.ErrUpgradeNotFound.
func (s *Store) Upgrade(ctx context.Context, id string) (auditor.UpgradeSummary, error) {
	if id == "" {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade: empty id: %w", auditor.ErrUpgradeNotFound)
	}
	out, err := s.summaries(ctx, id)
	if err != nil {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade %s in %s: %w", id, s.path, err)
	}
	if len(out) == 0 {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade %s in %s: %w", id, s.path, auditor.ErrUpgradeNotFound)
	}
	return out[0], nil
}

// summaries computes upgrade summaries, of every upgrade when id is "".
// The release name comes from the first upgrade.requested event, else the
// newest plan; the state from the newest lifecycle event.
func (s *Store) summaries(ctx context.Context, id string) ([]auditor.UpgradeSummary, error) {
	lifecycle := auditor.LifecycleTypes()
	in := strings.TrimSuffix(strings.Repeat("?,", len(lifecycle)), ",")
	// The lifecycle subqueries share one ORDER BY so both pick the same event.
	q := `
		SELECT g.upgradeid, g.n, g.first, g.last,
			COALESCE(
				(SELECT json_extract(r.event, '$.data.release.name') FROM events r
				 WHERE r.upgradeid = g.upgradeid AND r.type = ? ORDER BY r.seq, r.time, r.id LIMIT 1),
				(SELECT json_extract(p.event, '$.data.release') FROM events p
				 WHERE p.upgradeid = g.upgradeid AND p.type = ? ORDER BY p.seq DESC, p.time DESC, p.id DESC LIMIT 1),
				''),
			COALESCE(
				(SELECT l.type FROM events l
				 WHERE l.upgradeid = g.upgradeid AND l.type IN (` + in + `) ORDER BY l.seq DESC, l.time DESC, l.id DESC LIMIT 1),
				''),
			COALESCE(
				(SELECT json_extract(l.event, '$.data') FROM events l
				 WHERE l.upgradeid = g.upgradeid AND l.type IN (` + in + `) ORDER BY l.seq DESC, l.time DESC, l.id DESC LIMIT 1),
				'')
		FROM (
			SELECT upgradeid, COUNT(*) AS n, MIN(time) AS first, MAX(time) AS last
			FROM events WHERE upgradeid <> '' AND (? = '' OR upgradeid = ?)
			GROUP BY upgradeid
		) g
		ORDER BY g.first DESC, g.upgradeid`
	args := []any{events.TypeUpgradeRequested, events.TypeUpgradePlanned}
	for range 2 {
		for _, t := range lifecycle {
			args = append(args, t)
		}
	}
	args = append(args, id, id)
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlrows.Summaries(rows)
}
