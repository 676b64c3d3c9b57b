package mysql

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/golang-migrate/migrate/v4/database"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/apply"
	"github.com/cutover-dev/cutover/services/migrator/internal/runmarks"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// versionTable is golang-migrate's version table in the migrated database.
const versionTable = "schema_migrations" // golang-migrate mysql's DefaultMigrationsTable

// defaultLockWait is how long a call waits for the database's cutover lock
// held by another session before it gives up (Driver.LockWait).
const defaultLockWait = 10 * time.Second

// Driver opens MariaDB and MySQL databases by URL
// (mysql://user[:password]@host:port/dbname[?param=value]).
type Driver struct {
	// DumpDir holds mariadb-dump snapshots, one subdirectory per server
	// (default $TMPDIR/cutover-mysql-snapshots). Use a durable disk in
	// production.
	DumpDir string
	// Bin is the directory of mariadb-dump and mariadb (default: $PATH,
	// where mysqldump and mysql are tried when the mariadb names are absent).
	Bin string
	// LockWait is how long a call waits for the database's lock held by
	// another session (default 10s); then it fails with an error wrapping
	// migrator.ErrLockHeld.
	LockWait time.Duration
	// Method is how snapshots are taken: MethodAuto (default), MethodDump
	// or MethodBackup (see their docs; a request's snapshot_method
	// overrides it).
	Method string
	// BackupAbove is the size of a database's tables (data and indexes, as
	// information_schema reports them) from which MethodAuto takes a backup
	// instead of a dump (default 512 MiB).
	BackupAbove int64
}

var (
	_ migrator.Driver   = Driver{}
	_ migrator.Database = (*Database)(nil)
)

// Database is one MariaDB/MySQL database and its migration source. It holds
// no connection between calls.
type Database struct {
	runMethods
	drv    Driver
	cfg    *gomysql.Config // the database, multiStatements on
	name   string
	key    string
	source string
	method string // MethodAuto, MethodDump or MethodBackup
}

// identRE is what the driver accepts as a database name: it is used in
// snapshot names, files and statements, so no quoting surprises.
var identRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// ParseURL turns mysql://user[:password]@host[:port]/dbname[?params] (or
// mariadb://...) into the Go driver's configuration, with the settings the
// migrator relies on: several statements per migration file, UTC times.
// Query parameters are passed to the Go driver (tls=true, ...).
func ParseURL(location string) (*gomysql.Config, error) {
	u, err := url.Parse(location)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return nil, fmt.Errorf("scheme %q is not mysql", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("the URL names no host")
	}
	cfg := gomysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	for k, vs := range u.Query() {
		if cfg.Params == nil {
			cfg.Params = map[string]string{}
		}
		switch k {
		case "tls":
			cfg.TLSConfig = vs[0]
		default:
			cfg.Params[k] = vs[0]
		}
	}
	cfg.MultiStatements = true
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	if cfg.TLSConfig != "" {
		if err := cfg.Apply(); err != nil { // resolves the TLS name
			return nil, err
		}
	}
	return cfg, nil
}

// redact removes the password from a URL.
func redact(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.User == nil {
		return location
	}
	return u.Redacted()
}

// Open checks that the database at location exists and answers, and returns
// a handle on it with migrations in the directory source (may be "").
func (d Driver) Open(ctx context.Context, location, source string) (migrator.Database, error) {
	if d.LockWait <= 0 {
		d.LockWait = defaultLockWait
	}
	shown := redact(location)
	cfg, err := ParseURL(location)
	if err != nil {
		return nil, fmt.Errorf("open mysql database %s: %w (want mysql://user:password@host:port/dbname)", shown, err)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("open mysql database %s: the URL names no database; add /dbname", shown)
	}
	if !identRE.MatchString(cfg.DBName) {
		return nil, fmt.Errorf("open mysql database %s: database name %q has characters other than letters, digits, _ and $ (or more than 64); the migrator refuses it", shown, cfg.DBName)
	}
	switch strings.ToLower(cfg.DBName) {
	case "mysql", "information_schema", "performance_schema", "sys":
		return nil, fmt.Errorf("open mysql database %s: %s is a system database; migrate another database", shown, cfg.DBName)
	}
	switch d.Method {
	case "":
		d.Method = MethodAuto
	case MethodAuto, MethodDump, MethodBackup:
	default:
		return nil, fmt.Errorf("open mysql database %s: snapshot method %q: use auto, dump or backup", shown, d.Method)
	}
	if d.BackupAbove <= 0 {
		d.BackupAbove = defaultBackupAbove
	}
	db := &Database{drv: d, cfg: cfg, name: cfg.DBName, key: "mysql://" + cfg.Addr + "/" + cfg.DBName, method: d.Method}
	db.runMethods = apply.Bind(db.run)
	if db.source, err = apply.SourceDir(source); err != nil {
		return nil, err
	}
	c, err := db.conn(ctx)
	if err != nil {
		return nil, err
	}
	return db, c.Close()
}

// Key returns mysql://host:port/dbname.
func (d *Database) Key() string { return d.key }

// Close does nothing: a Database holds no connection between calls.
func (d *Database) Close() error { return nil }

// conn opens a one-connection pool on the database.
func (d *Database) conn(ctx context.Context) (*sql.DB, error) { return d.connTo(ctx, d.name) }

// connTo opens a one-connection pool on database name of the same server
// ("" for none).
func (d *Database) connTo(ctx context.Context, name string) (*sql.DB, error) {
	cfg := d.cfg.Clone()
	cfg.DBName = name
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open mysql database %s: %w", d.key, err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		var me *gomysql.MySQLError
		if errors.As(err, &me) && me.Number == 1049 {
			return nil, fmt.Errorf("open mysql database %s: database %s does not exist; check the URL (the migrator does not create databases)", d.key, name)
		}
		return nil, fmt.Errorf("open mysql database %s: %w; check that the server runs and the URL", d.key, err)
	}
	return db, nil
}

// lockName is the name of the database's GET_LOCK lock (at most 64
// characters, server-wide, so it names the database).
func (d *Database) lockName() string {
	n := "cutover.migrate." + d.name
	if len(n) > 64 {
		sum := sha256.Sum256([]byte(d.name))
		n = "cutover.migrate." + hex.EncodeToString(sum[:])[:40]
	}
	return n
}

// LockName returns the name of the server lock (GET_LOCK) the driver holds
// on the database while it migrates, snapshots or restores it: another
// cutover migrator, or a tool that takes the same lock, waits for it.
func (d *Database) LockName() string { return d.lockName() }

// locked runs fn while this session holds the database's GET_LOCK lock, on
// a connection of its own. The migrator's KV lock already keeps its own
// instances apart; this one also keeps apart migrators of different
// clusters, and an operator's tools, sharing the server.
func (d *Database) locked(ctx context.Context, what string, fn func() error) error {
	db, err := d.connTo(ctx, "")
	if err != nil {
		return err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, d.key, err)
	}
	defer c.Close()
	var got sql.NullInt64
	wait := int(d.drv.LockWait.Round(time.Second) / time.Second)
	if wait < 1 {
		wait = 1
	}
	if err := c.QueryRowContext(ctx, `SELECT GET_LOCK(?, ?)`, d.lockName(), wait).Scan(&got); err != nil {
		return fmt.Errorf("%s %s: take lock %s: %w", what, d.key, d.lockName(), err)
	}
	if got.Int64 != 1 {
		var holder sql.NullInt64
		_ = c.QueryRowContext(ctx, `SELECT IS_USED_LOCK(?)`, d.lockName()).Scan(&holder)
		return fmt.Errorf("%s %s: %w: server lock %s is held by connection %d after waiting %v; wait for it or end that session (KILL %d)",
			what, d.key, migrator.ErrLockHeld, d.lockName(), holder.Int64, d.drv.LockWait, holder.Int64)
	}
	defer func() { _, _ = c.ExecContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(?)`, d.lockName()) }()
	return fn()
}

// tableExists reports whether table exists in the connection's database.
func tableExists(ctx context.Context, db querier, table string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`, table).Scan(&n)
	return n > 0, err
}

// schema finds golang-migrate's version table and the ledger in the
// connection's database; the ledger's placeholders become question marks.
var schema = apply.Schema{
	VersionTable: versionTable, Quoted: "`" + versionTable + "`",
	Exists: func(ctx context.Context, db *sql.DB, table string) (bool, error) { return tableExists(ctx, db, table) },
	Ledger: func(db ledger.Execer) ledger.Execer { return qmarks{db} },
	// golang-migrate's mysql driver creates it only when it runs.
	CreateVersionTable: "CREATE TABLE IF NOT EXISTS `" + versionTable + "` (version bigint not null primary key, dirty boolean not null)",
}

// readVersion reads golang-migrate's version on db (apply.Schema.ReadVersion).
var readVersion = schema.ReadVersion

// RecordRun records run in the ledger (nil: the last run ended clean), and
// its start next to its snapshot (package runmarks).
func (d *Database) RecordRun(ctx context.Context, run *migrator.Run) error {
	if run != nil {
		if err := runmarks.Start(d.dumpDir(), *run, ""); err != nil {
			return err
		}
	}
	return d.run().RecordRun(ctx, run)
}

// qmarks adapts the ledger's numbered placeholders ($1, $2, ...) to the
// question marks MySQL takes; the ledger numbers them in order of use.
type qmarks struct{ db ledger.Execer }

var numbered = regexp.MustCompile(`\$[0-9]+`)

func (q qmarks) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.db.ExecContext(ctx, numbered.ReplaceAllString(query, "?"), args...)
}

func (q qmarks) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(ctx, numbered.ReplaceAllString(query, "?"), args...)
}

// Up applies the up migrations after the current version until target.
func (d *Database) Up(ctx context.Context, target uint) error {
	return d.locked(ctx, "migrate", func() error { return d.runMethods.Up(ctx, target) })
}

// Down applies the down migrations from the current version until target.
func (d *Database) Down(ctx context.Context, target uint) error {
	return d.locked(ctx, "migrate", func() error { return d.runMethods.Down(ctx, target) })
}

// runMethods is apply.Methods under a name of this package, so that
// Database embeds it (bound to run) without exporting a field.
type runMethods = apply.Methods

// run describes the database to apply.Run, which migrates one step at a
// time, so that a failure names its file. Each
// file runs as one multi-statement string, as golang-migrate's mysql driver
// runs it: MySQL commits each DDL statement on its own (and DML too, in
// autocommit), so a file that fails after its first statement leaves the
// statements before it in place; see stepError.
func (d *Database) run() apply.Run {
	return apply.Run{
		Schema: schema, Key: d.key, Source: d.source, Conn: d.conn, Name: "mysql", StepError: d.stepError,
		Driver: func(db *sql.DB) (database.Driver, error) {
			return migratemysql.WithInstance(db, &migratemysql.Config{})
		},
	}
}

// stepError describes a failed migration file, and whether the server undid
// it: only when the file is one statement (InnoDB undoes a failed single
// statement, DDL included, since MariaDB 10.6's atomic DDL) that controls no
// transaction. A file of several statements may have committed some before
// the failure, so the migrator restores the snapshot instead of trusting
// the down files.
func (d *Database) stepError(step migrator.Migration, name string, err error) *migrator.StepError {
	se := &migrator.StepError{Version: step.Version, File: name, Err: apply.SQLError(err)}
	body, rerr := os.ReadFile(filepath.Join(d.source, name))
	se.RolledBack = rerr == nil && migrator.Statements(string(body)) == 1 && migrator.Transactional(string(body))
	return se
}

// Fingerprint returns sha256:<hex> of the database's schema: its tables,
// columns (type, nullability, default), indexes and triggers, migration
// bookkeeping aside. A command migration without a version command reports
// it before and after, so the history says whether and how the schema moved.
func (d *Database) Fingerprint(ctx context.Context) (string, error) {
	db, err := d.conn(ctx)
	if err != nil {
		return "", err
	}
	defer db.Close()
	h := sha256.New()
	for _, q := range []string{
		`SELECT CONCAT_WS('|', table_name, column_name, column_type, is_nullable, COALESCE(column_default, 'NULL'), extra)
			FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name NOT IN (?, ?) ORDER BY table_name, ordinal_position`,
		`SELECT CONCAT_WS('|', table_name, index_name, non_unique, seq_in_index, column_name)
			FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name NOT IN (?, ?) ORDER BY table_name, index_name, seq_in_index`,
		`SELECT CONCAT_WS('|', trigger_name, event_object_table, action_timing, event_manipulation, action_statement)
			FROM information_schema.triggers WHERE trigger_schema = DATABASE() AND ? <> ? ORDER BY trigger_name`,
	} {
		rows, err := db.QueryContext(ctx, q, versionTable, ledger.Table)
		if err != nil {
			return "", fmt.Errorf("fingerprint the schema of %s: %w", d.key, err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return "", fmt.Errorf("fingerprint the schema of %s: %w", d.key, err)
			}
			fmt.Fprintln(h, s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", fmt.Errorf("fingerprint the schema of %s: %w", d.key, err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}
