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

	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the auditor's history in one SQLite file. Its queries are
// sqlstore's, shared with the PostgreSQL store.
type Store struct {
	sqlstore.History
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
	return &Store{History: sqlstore.History{Dialect: dialect, Name: abs, Writer: writer, Reader: reader}, path: abs, writer: writer, reader: reader}, nil
}

// dialect is SQLite's: positional ? placeholders, json_extract; ids
// compare bytewise already.
var dialect = sqlstore.Dialect{
	Table: "events",
	RowID: "rowid",
	Param: func(int) string { return "?" },
	JSON: func(col string, path ...string) string {
		return "json_extract(" + col + ", '$." + strings.Join(path, ".") + "')"
	},
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
	return sqlstore.MigrateUp(db, drv, migrations, "sqlite", path, "restore the file from a backup or move it aside to start a new history")
}

// Close closes the database connections.
func (s *Store) Close() error {
	if err := errors.Join(s.reader.Close(), s.writer.Close()); err != nil {
		return fmt.Errorf("close audit store %s: %w", s.path, err)
	}
	return nil
}
