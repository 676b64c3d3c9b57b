package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	sqlrows "github.com/cutover-dev/cutover/services/auditor/internal/rows"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationsTable is the golang-migrate version table of the auditor's schema.
const MigrationsTable = "cutover_auditor_schema_migrations"

// Store is the auditor's history in a PostgreSQL database.
type Store struct {
	name string // the URL without its password, for errors
	db   *sql.DB
}

var (
	_ auditor.Store   = (*Store)(nil)
	_ auditor.History = (*Store)(nil)
	_ auditor.Pruner  = (*Store)(nil)
)

// Open connects to the database at dsn (a postgres:// URL or a key=value
// connection string) and brings its schema to the latest version.
func Open(ctx context.Context, dsn string) (*Store, error) {
	name := redact(dsn)
	if err := migrateSchema(ctx, dsn, name); err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open audit store %s: %w", name, err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Store{name: name, db: db}, nil
}

// redact hides the password of a URL; other connection strings are shown
// as "postgres" only, since they may carry one anywhere.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "postgres"
	}
	return u.Redacted()
}

// migrateSchema applies the embedded migrations on a connection pool of its
// own: closing golang-migrate closes the database it was given.
func migrateSchema(ctx context.Context, dsn, name string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("open audit store %s for schema migration: %w", name, err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("open audit store %s: %w (check the server is running, the database exists and the URL's credentials)", name, err)
	}
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{MigrationsTable: MigrationsTable})
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("open audit store %s for schema migration: %w", name, err)
	}
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("read embedded audit schema: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("prepare audit store %s schema: %w", name, err)
	}
	err = m.Up()
	srcErr, dbErr := m.Close()
	var dirty migrate.ErrDirty
	switch {
	case errors.As(err, &dirty):
		return fmt.Errorf("migrate audit store %s schema: version %d is dirty; fix the schema by hand and clear the dirty flag in %s, or point --store at a new database: %w", name, dirty.Version, MigrationsTable, err)
	case err != nil && !errors.Is(err, migrate.ErrNoChange):
		return fmt.Errorf("migrate audit store %s schema: %w", name, err)
	}
	if err := errors.Join(srcErr, dbErr); err != nil {
		return fmt.Errorf("close audit store %s after schema migration: %w", name, err)
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close audit store %s: %w", s.name, err)
	}
	return nil
}

// Append stores r unless a record with its id exists, and reports whether it
// inserted it.
func (s *Store) Append(ctx context.Context, r auditor.Record) (bool, error) {
	res, err := s.db.ExecContext(ctx, `
		INSERT INTO cutover_events (id, type, source, subject, upgradeid, nodeid, causationid, time, stored_at, event, seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Type, r.Source, r.Subject, r.UpgradeID, r.NodeID, r.CausationID,
		r.Time.UnixNano(), r.StoredAt.UnixNano(), string(r.Event), int64(r.Sequence))
	if err != nil {
		return false, fmt.Errorf("append event %s to %s: %w", r.ID, s.name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("append event %s to %s: %w", r.ID, s.name, err)
	}
	return n == 1, nil
}

// PruneSignals deletes at most limit heartbeats and health signals older
// than before that carry no upgrade id (auditor.SignalTypes), and returns
// how many it deleted.
func (s *Store) PruneSignals(ctx context.Context, before time.Time, limit int) (int, error) {
	types := auditor.SignalTypes()
	ph := make([]string, len(types))
	args := make([]any, 0, len(types)+2)
	for i, t := range types {
		ph[i] = "$" + strconv.Itoa(i+1)
		args = append(args, t)
	}
	args = append(args, before.UnixNano(), limit)
	n := len(types)
	res, err := s.db.ExecContext(ctx, `
		DELETE FROM cutover_events WHERE id IN (
			SELECT id FROM cutover_events WHERE type IN (`+strings.Join(ph, ",")+`)
			AND time < $`+strconv.Itoa(n+1)+` AND upgradeid = '' LIMIT $`+strconv.Itoa(n+2)+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("prune signals in %s: %w", s.name, err)
	}
	deleted, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune signals in %s: %w", s.name, err)
	}
	return int(deleted), nil
}

// Count returns the number of stored events.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM cutover_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events in %s: %w", s.name, err)
	}
	return n, nil
}

// Events returns the records of one upgrade in stream order (then time and id, for rows stored before the sequence was).
func (s *Store) Events(ctx context.Context, upgradeID string) ([]auditor.Record, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT id, type, source, subject, upgradeid, nodeid, causationid, time, stored_at, event, seq
		FROM cutover_events WHERE upgradeid = $1 ORDER BY seq, time, id COLLATE "C"`, upgradeID)
	if err != nil {
		return nil, fmt.Errorf("read events of upgrade %s from %s: %w", upgradeID, s.name, err)
	}
	out, err := sqlrows.Records(rows)
	if err != nil {
		return nil, fmt.Errorf("read events of upgrade %s from %s: %w", upgradeID, s.name, err)
	}
	return out, nil
}

// Upgrades returns one summary per upgrade id, the most recently started first.
func (s *Store) Upgrades(ctx context.Context) ([]auditor.UpgradeSummary, error) {
	out, err := s.summaries(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list upgrades in %s: %w", s.name, err)
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
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade %s in %s: %w", id, s.name, err)
	}
	if len(out) == 0 {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade %s in %s: %w", id, s.name, auditor.ErrUpgradeNotFound)
	}
	return out[0], nil
}

// summaries computes upgrade summaries, of every upgrade when id is "",
// with the same rules as the SQLite store: the release from the first
// upgrade.requested event, else the newest plan; the state from the newest
// lifecycle event. Ids compare bytewise (COLLATE "C") as in SQLite, so ties
// in time break the same way in both stores.
func (s *Store) summaries(ctx context.Context, id string) ([]auditor.UpgradeSummary, error) {
	lifecycle := auditor.LifecycleTypes()
	ph := make([]string, len(lifecycle))
	for i := range lifecycle {
		ph[i] = "$" + strconv.Itoa(i+3)
	}
	in := strings.Join(ph, ",")
	idArg := "$" + strconv.Itoa(len(lifecycle)+3)
	q := `
		SELECT g.upgradeid, g.n, g.first, g.last,
			COALESCE(
				(SELECT r.event::jsonb #>> '{data,release,name}' FROM cutover_events r
				 WHERE r.upgradeid = g.upgradeid AND r.type = $1 ORDER BY r.seq, r.time, r.id COLLATE "C" LIMIT 1),
				(SELECT p.event::jsonb #>> '{data,release}' FROM cutover_events p
				 WHERE p.upgradeid = g.upgradeid AND p.type = $2 ORDER BY p.seq DESC, p.time DESC, p.id COLLATE "C" DESC LIMIT 1),
				''),
			COALESCE(
				(SELECT l.type FROM cutover_events l
				 WHERE l.upgradeid = g.upgradeid AND l.type IN (` + in + `) ORDER BY l.seq DESC, l.time DESC, l.id COLLATE "C" DESC LIMIT 1),
				''),
			COALESCE(
				(SELECT l.event::jsonb #>> '{data}' FROM cutover_events l
				 WHERE l.upgradeid = g.upgradeid AND l.type IN (` + in + `) ORDER BY l.seq DESC, l.time DESC, l.id COLLATE "C" DESC LIMIT 1),
				'')
		FROM (
			SELECT upgradeid, COUNT(*) AS n, MIN(time) AS first, MAX(time) AS last
			FROM cutover_events WHERE upgradeid <> '' AND (` + idArg + ` = '' OR upgradeid = ` + idArg + `)
			GROUP BY upgradeid
		) g
		ORDER BY g.first DESC, g.upgradeid COLLATE "C"`
	args := []any{events.TypeUpgradeRequested, events.TypeUpgradePlanned}
	for _, t := range lifecycle {
		args = append(args, t)
	}
	args = append(args, id)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlrows.Summaries(rows)
}
