package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationsTable is the golang-migrate version table of the auditor's schema.
const MigrationsTable = "cutover_auditor_schema_migrations"

// Store is the auditor's history in a PostgreSQL database. Its queries are
// sqlstore's, shared with the SQLite store.
type Store struct {
	sqlstore.History
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
	return &Store{History: sqlstore.History{Dialect: dialect, Name: name, Writer: db, Reader: db}, name: name, db: db}, nil
}

// dialect is PostgreSQL's: numbered $n placeholders, #>> on jsonb, and ids
// ordered bytewise (COLLATE "C") as in SQLite, so ties in time break the
// same way in both stores.
var dialect = sqlstore.Dialect{
	Table: "cutover_events",
	RowID: "id",
	Param: func(n int) string { return "$" + strconv.Itoa(n) },
	JSON: func(col string, path ...string) string {
		return col + "::jsonb #>> '{" + strings.Join(path, ",") + "}'"
	},
	Collate: ` COLLATE "C"`,
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
	return sqlstore.MigrateUp(db, drv, migrations, "pgx5", name, "fix the schema by hand and clear the dirty flag in "+MigrationsTable+", or point --store at a new database")
}

// Close closes the connection pool.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close audit store %s: %w", s.name, err)
	}
	return nil
}
