package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/apply"
	"github.com/cutover-dev/cutover/services/migrator/internal/runmarks"
)

// Snapshot methods (Driver.Method).
const (
	// MethodAuto copies with CREATE DATABASE ... TEMPLATE when no other
	// session is connected to the database, and with pg_dump when one is
	// (or the template copy is refused): it never disconnects anyone.
	MethodAuto = "auto"
	// MethodTemplate only uses CREATE DATABASE ... TEMPLATE, terminating
	// the database's other sessions for the length of the copy.
	MethodTemplate = "template"
	// MethodDump only uses pg_dump (custom format) and pg_restore.
	MethodDump = "dump"
)

// Driver opens PostgreSQL databases by URL
// (postgres://user[:password]@host:port/dbname?sslmode=...).
type Driver struct {
	// Method is MethodAuto (default), MethodTemplate or MethodDump.
	Method string
	// Strategy is the CREATE DATABASE strategy of template copies:
	// "FILE_COPY" (default: copies the files, fastest for large databases)
	// or "WAL_LOG" (PostgreSQL 15's default: logs every block, no checkpoint).
	Strategy string
	// DumpDir holds pg_dump snapshots, one subdirectory per server
	// (default $TMPDIR/cutover-pg-snapshots). Use a durable disk in production.
	DumpDir string
	// PGBin is the directory of pg_dump and pg_restore (default: $PATH,
	// then /usr/lib/postgresql/15/bin).
	PGBin string
	// MaintenanceDB is the database the driver connects to for CREATE,
	// ALTER and DROP DATABASE (default "postgres").
	MaintenanceDB string
}

var (
	_ migrator.Driver   = Driver{}
	_ migrator.Database = (*Database)(nil)
)

// Database is one PostgreSQL database and its migration source. It holds no
// connection between calls, so that its snapshots and restores find no
// connection of its own on the database.
type Database struct {
	runMethods
	// multi runs a file statement by statement, each in its own implicit
	// transaction (x-multi-statement=true in the URL, as golang-migrate's
	// pgx driver takes it): a CREATE INDEX CONCURRENTLY may then sit in a
	// file with other statements.
	multi  bool
	drv    Driver
	cfg    *pgx.ConnConfig // the database
	admin  *pgx.ConnConfig // the maintenance database
	name   string
	key    string
	source string
}

// Open checks that the database at location exists and answers, and returns
// a handle on it with migrations in the directory source (may be "").
func (d Driver) Open(ctx context.Context, location, source string) (migrator.Database, error) {
	if d.Method == "" {
		d.Method = MethodAuto
	}
	if d.Strategy == "" {
		d.Strategy = "FILE_COPY"
	}
	if d.MaintenanceDB == "" {
		d.MaintenanceDB = "postgres"
	}
	switch d.Method {
	case MethodAuto, MethodTemplate, MethodDump:
	default:
		return nil, fmt.Errorf("open postgres database: snapshot method %q is unknown; use auto, template or dump", d.Method)
	}
	shown := redact(location)
	location, multi, err := apply.Flag(location, "x-multi-statement")
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", shown, err)
	}
	cfg, err := pgx.ParseConfig(location)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w (want postgres://user@host:port/dbname)", shown, err)
	}
	if cfg.Database == "" {
		return nil, fmt.Errorf("open postgres database %s: the URL names no database; add /dbname", shown)
	}
	if cfg.Database == d.MaintenanceDB {
		return nil, fmt.Errorf("open postgres database %s: %s is the maintenance database the migrator works from; migrate another database", shown, cfg.Database)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		// MarkRun tells the migrator's own sessions by it.
		cfg.RuntimeParams["application_name"] = appName
	}
	admin := cfg.Copy()
	admin.Database = d.MaintenanceDB
	db := &Database{drv: d, cfg: cfg, admin: admin, name: cfg.Database, multi: multi,
		key: "postgres://" + net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))) + "/" + cfg.Database}
	db.runMethods = apply.Bind(db.run)
	if source != "" {
		if db.source, err = filepath.Abs(source); err != nil {
			return nil, fmt.Errorf("open migration source %q: %w", source, err)
		}
	}
	c, err := db.conn(ctx)
	if err != nil {
		return nil, err
	}
	return db, c.Close()
}

// SetSnapshotMethod chooses the snapshot method of this database (a
// request's snapshot_method), over the driver's.
func (d *Database) SetSnapshotMethod(method string) error {
	switch method {
	case MethodAuto, MethodTemplate, MethodDump:
		d.drv.Method = method
		return nil
	}
	return fmt.Errorf("snapshot_method %q is unknown; use auto (TEMPLATE when no session is connected, else pg_dump), template or dump", method)
}

// redact removes the password from a URL.
func redact(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.User == nil {
		return location
	}
	return u.Redacted()
}

// Key returns postgres://host:port/dbname.
func (d *Database) Key() string { return d.key }

// Close does nothing: a Database holds no connection between calls.
func (d *Database) Close() error { return nil }

// conn opens a one-connection pool on the database.
func (d *Database) conn(ctx context.Context) (*sql.DB, error) { return open(ctx, d.cfg, d.key) }

// adminConn opens a one-connection pool on the maintenance database.
func (d *Database) adminConn(ctx context.Context) (*sql.DB, error) {
	return open(ctx, d.admin, "maintenance database "+d.admin.Database+" of "+d.key)
}

// dbConfig returns the config of another database of the same server.
func (d *Database) dbConfig(name string) *pgx.ConnConfig {
	c := d.cfg.Copy()
	c.Database = name
	return c
}

func open(ctx context.Context, cfg *pgx.ConnConfig, what string) (*sql.DB, error) {
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "3D000" {
			return nil, fmt.Errorf("open postgres database %s: it does not exist; check the URL (the migrator does not create databases)", what)
		}
		return nil, fmt.Errorf("open postgres database %s: %w; check that the server runs and the URL", what, err)
	}
	return db, nil
}

// schema finds golang-migrate's schema_migrations table and the ledger in
// the connection's current schema.
var schema = apply.Schema{
	VersionTable: migratepgx.DefaultMigrationsTable,
	Exists: func(ctx context.Context, db *sql.DB, table string) (bool, error) {
		var exists bool
		err := db.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists)
		return exists, err
	},
}

// readVersion reads golang-migrate's version on db (apply.Schema.ReadVersion).
var readVersion = schema.ReadVersion

// runMethods is apply.Methods under a name of this package, so that
// Database embeds it (bound to run) without exporting a field.
type runMethods = apply.Methods

// run describes the database to apply.Run, which migrates one step at a
// time, so that a failure names its file. Each
// file runs as one statement string (golang-migrate's default): PostgreSQL
// runs a file of several statements in one implicit transaction, so a failing
// file leaves nothing behind but the dirty flag; a file holding only CREATE
// INDEX CONCURRENTLY runs outside any transaction, as it must.
func (d *Database) run() apply.Run {
	return apply.Run{
		Schema: schema, Key: d.key, Source: d.source, Conn: d.conn, Name: "pgx5", StepError: d.stepError,
		Driver: func(db *sql.DB) (database.Driver, error) {
			return migratepgx.WithInstance(db, &migratepgx.Config{MultiStatementEnabled: d.multi})
		},
	}
}

// stepError describes a failed migration file, and whether PostgreSQL undid
// it: a file runs as one statement string, in one implicit transaction,
// unless it controls transactions itself or runs a CONCURRENTLY statement,
// which runs outside any transaction and can leave an invalid index behind.
func (d *Database) stepError(step migrator.Migration, name string, err error) *migrator.StepError {
	se := &migrator.StepError{Version: step.Version, File: name, Err: apply.SQLError(err)}
	body, rerr := os.ReadFile(filepath.Join(d.source, name))
	se.RolledBack = rerr == nil && !d.multi && migrator.Transactional(string(body), "CONCURRENTLY")
	var pgErr *pgconn.PgError
	var migErr database.Error // golang-migrate's pgx driver returns it by value, without Unwrap
	if errors.As(err, &migErr) {
		err = migErr.OrigErr
	}
	if !d.multi && errors.As(err, &pgErr) && pgErr.Code == "25001" { // active_sql_transaction
		// A statement that cannot run in a transaction (CREATE INDEX
		// CONCURRENTLY, VACUUM, ...) in a file of several statements:
		// PostgreSQL refused it within the file's implicit transaction,
		// which it rolled back whole; nothing of the file remains.
		se.RolledBack = true
		se.Err = fmt.Errorf("%w; PostgreSQL runs a file of several statements in one transaction: put that statement alone in a file of its own, "+
			"or add x-multi-statement=true to the database URL so each statement runs on its own (a failure midway then leaves the statements before it applied)", se.Err)
	}
	return se
}

// appName is the application_name of the migrator's sessions, unless the
// URL names another.
const appName = "cutover-migrator"

// RecordRun records run in the ledger (nil: the last run ended clean), and
// its start, with the write counters then, next to the snapshots' labels
// (package runmarks).
func (d *Database) RecordRun(ctx context.Context, run *migrator.Run) error {
	if run != nil {
		stats, err := d.stats(ctx)
		if err != nil {
			return fmt.Errorf("record run %s: %w", run.ID, err)
		}
		b, err := json.Marshal(stats)
		if err != nil {
			return err
		}
		if err := runmarks.Start(d.dumpDir(), *run, string(b)); err != nil {
			return err
		}
	}
	return d.run().RecordRun(ctx, run)
}
