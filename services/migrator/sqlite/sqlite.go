package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/apply"
	"github.com/cutover-dev/cutover/services/migrator/internal/runmarks"
)

// Driver opens SQLite databases by file path.
type Driver struct{}

var (
	_ migrator.Driver   = Driver{}
	_ migrator.Database = (*Database)(nil)
)

// busyTimeout is how long a statement waits for the service's own writes to
// release the database before it fails.
const busyTimeout = 10 * time.Second

// Open returns a handle on the SQLite file at location, with migrations in
// the directory source (may be ""). The file must exist.
func (Driver) Open(ctx context.Context, location, source string) (migrator.Database, error) {
	location, noTxWrap, err := apply.Flag(location, "x-no-tx-wrap")
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", location, err)
	}
	path, err := filepath.Abs(location)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %q: %w", location, err)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open sqlite database %s: the file does not exist; check the path (the migrator does not create databases)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("open sqlite database %s: it is a directory; name the database file", path)
	}
	d := &Database{path: path, snapDir: filepath.Join(filepath.Dir(path), SnapshotDir), noTxWrap: noTxWrap}
	d.runMethods = apply.Bind(d.run)
	if d.source, err = apply.SourceDir(source); err != nil {
		return nil, err
	}
	return d, nil
}

// SnapshotDir is the directory, next to each database, that holds its snapshots.
const SnapshotDir = ".cutover-snapshots"

// Database is one SQLite file and its migration source.
type Database struct {
	runMethods
	// noTxWrap runs each file without golang-migrate's BEGIN/COMMIT around
	// it (x-no-tx-wrap=true after the path, as golang-migrate's sqlite
	// driver takes it), for files that control their own transaction.
	noTxWrap bool
	path     string // absolute
	source   string // absolute, or ""
	snapDir  string
}

// Key returns the database's absolute path.
func (d *Database) Key() string { return d.path }

// Close does nothing: a Database holds no connection between calls.
func (d *Database) Close() error { return nil }

// dsn returns a modernc DSN: a file: URI, so that '?' or '#' in a path stay
// part of it.
func dsn(path string, extra ...string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	for i := 0; i+1 < len(extra); i += 2 {
		q.Add(extra[i], extra[i+1])
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}).String()
}

// conn opens a one-connection pool on path.
func conn(ctx context.Context, path string, extra ...string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, extra...))
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return db, nil
}

// schema finds golang-migrate's schema_migrations table and the ledger in
// the file.
var schema = apply.Schema{
	VersionTable: migratesqlite.DefaultMigrationsTable,
	Exists: func(ctx context.Context, db *sql.DB, table string) (bool, error) {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n)
		return n > 0, err
	},
}

// readVersion reads golang-migrate's version on db (apply.Schema.ReadVersion).
var readVersion = schema.ReadVersion

// runMethods is apply.Methods under a name of this package, so that
// Database embeds it (bound to run) without exporting a field.
type runMethods = apply.Methods

// run describes the database to apply.Run, which migrates one step at a
// time, so that a failure names its file. It stops
// between steps when ctx is done, leaving the database clean.
func (d *Database) run() apply.Run {
	return apply.Run{
		Schema: schema, Key: d.path, Source: d.source, Name: "sqlite", StepError: d.stepError,
		Conn: func(ctx context.Context) (*sql.DB, error) { return conn(ctx, d.path) },
		// golang-migrate closes db when m is closed.
		Driver: func(db *sql.DB) (database.Driver, error) {
			return migratesqlite.WithInstance(db, &migratesqlite.Config{NoTxWrap: d.noTxWrap})
		},
	}
}

// stepError describes a failed migration file, and whether SQLite undid it:
// golang-migrate runs each file in one transaction, so it did unless the
// file controls transactions itself or the rollback failed.
func (d *Database) stepError(step migrator.Migration, name string, err error) *migrator.StepError {
	se := &migrator.StepError{Version: step.Version, File: name, Err: apply.SQLError(err)}
	body, rerr := os.ReadFile(filepath.Join(d.source, name))
	var joined interface{ Unwrap() []error }
	rollbackFailed := errors.As(se.Err, &joined) && len(joined.Unwrap()) > 1
	se.RolledBack = rerr == nil && !rollbackFailed && !d.noTxWrap && migrator.Transactional(string(body))
	if !d.noTxWrap && strings.Contains(se.Err.Error(), "cannot start a transaction within a transaction") {
		// The file's own BEGIN failed inside golang-migrate's: its first
		// statement, so nothing of it ran and golang-migrate rolled back.
		se.RolledBack = !rollbackFailed
		se.Err = fmt.Errorf("%w; the file opens its own transaction (BEGIN) inside the one golang-migrate runs each file in: "+
			"remove its BEGIN/COMMIT, or add ?x-no-tx-wrap=true to the database location so the file runs as written", se.Err)
	}
	return se
}

// RecordRun records run in the ledger (nil: the last run ended clean), and
// its start next to its snapshot (package runmarks).
func (d *Database) RecordRun(ctx context.Context, run *migrator.Run) error {
	if run != nil {
		if err := runmarks.Start(d.snapDir, *run, ""); err != nil {
			return err
		}
	}
	return d.run().RecordRun(ctx, run)
}

// markSuffix names, after the id of a run's snapshot, the copy of the
// database taken at the run's mark (MarkRun), in the snapshot directory.
const markSuffix = ".mark"

// MarkRun takes the mark of the run in progress: a copy of the database,
// made like a snapshot's, next to the run's snapshot (its id and
// markSuffix), named in the run's record (package runmarks). WrittenAfter
// compares the database with it, so that only the writes after the run
// count; DropSnapshot removes it with its snapshot.
func (d *Database) MarkRun(ctx context.Context) error {
	run, err := runmarks.Current(ctx, d, d.path)
	if err != nil {
		return err
	}
	if _, _, err := d.locate(run.Snapshot); err != nil {
		return fmt.Errorf("mark the end of run %s: %w", run.ID, err)
	}
	name := run.Snapshot + markSuffix
	final := filepath.Join(d.snapDir, name)
	tmp := final + ".tmp"
	_, err = copyDatabase(ctx, d.path, tmp)
	if err == nil {
		err = syncFile(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(d.snapDir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mark the end of run %s: copy %s into %s: %w (check free space in %s)", run.ID, d.path, final, err, d.snapDir)
	}
	return runmarks.End(d.snapDir, run, name)
}
