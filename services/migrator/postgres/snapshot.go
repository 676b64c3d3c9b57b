package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/apply"
	"github.com/cutover-dev/cutover/services/migrator/internal/runmarks"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// snapTimeFormat orders snapshot names by time and keeps them unique (to the
// microsecond: two snapshots in one second, such as the one a rollback keeps
// of the state it replaces, must not share a name); it stays within
// PostgreSQL's 63-byte identifiers with a 33-byte prefix. stamp writes it
// with "_" for the ".": identifiers stay unquoted-looking.
const snapTimeFormat = "20060102T150405.000000"

// stamp formats t for a snapshot or scratch database name.
func stamp(t time.Time) string { return strings.Replace(t.UTC().Format(snapTimeFormat), ".", "_", 1) }

// maxPrefix leaves room for "_snap_" and the time in a 63-byte identifier.
const maxPrefix = 63 - len("_snap_") - len(snapTimeFormat)

// dumpSuffix ends the ids of pg_dump snapshots.
const dumpSuffix = ".pgdump"

// drainTimeout bounds the wait for a database's other sessions to end after
// they were terminated.
const drainTimeout = 30 * time.Second

// comment is stored as the COMMENT of a template snapshot database and as
// the sidecar file of a dump, and identifies the snapshot.
type comment struct {
	Of      string    `json:"cutover_snapshot_of"`
	Taken   time.Time `json:"taken"`
	Method  string    `json:"method"`
	Version uint      `json:"version"`
	Dirty   bool      `json:"dirty"`
	// Stats holds each table's pg_stat_user_tables write counters
	// ("schema.table") read just before the copy: WrittenAfter subtracts
	// them from the counters then. Nil in snapshots taken before it existed.
	Stats map[string]counters `json:"stats,omitempty"`
}

// counters are a table's write counters.
type counters struct {
	Ins int64 `json:"ins"`
	Upd int64 `json:"upd"`
	Del int64 `json:"del"`
}

func (d *Database) snapPrefix() string {
	p := d.name
	if len(p) > maxPrefix {
		p = p[:maxPrefix]
	}
	return p + "_snap_"
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

// Snapshot copies the database, by the driver's method:
//
//   - MethodTemplate runs CREATE DATABASE <snap> TEMPLATE <db>, which
//     PostgreSQL only allows when no other session is connected to <db>: the
//     driver refuses new connections to it (ALLOW_CONNECTIONS false),
//     terminates the sessions it has, copies, then allows connections again.
//     The service sees its connections dropped and reconnects after the copy
//     (seconds per GB).
//   - MethodDump runs pg_dump, which disconnects nobody.
//   - MethodAuto (default) copies with TEMPLATE only when no other session
//     is connected: it refuses new connections, and if a session is still
//     there it allows them again without terminating anything and uses
//     pg_dump. A refused template copy falls back to pg_dump too.
func (d *Database) Snapshot(ctx context.Context) (migrator.Snapshot, error) {
	now := time.Now().UTC()
	v, dirty, err := d.Version(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	c := comment{Of: d.name, Taken: now, Version: v, Dirty: dirty}
	if d.drv.Method != MethodDump {
		s, err := d.snapshotTemplate(ctx, c, d.drv.Method == MethodTemplate)
		if err == nil || d.drv.Method == MethodTemplate {
			return s, err
		}
		if ctx.Err() != nil {
			return migrator.Snapshot{}, err
		}
		// Fall through to pg_dump, and say why in case it fails too.
		s, derr := d.snapshotDump(ctx, c)
		if derr != nil {
			return migrator.Snapshot{}, fmt.Errorf("%w; and pg_dump: %w", err, derr)
		}
		return s, nil
	}
	return d.snapshotDump(ctx, c)
}

// errSessions is returned by exclusive when, without terminate, other
// sessions are connected.
var errSessions = errors.New("other sessions are connected")

// snapshotTemplate copies with CREATE DATABASE TEMPLATE; without terminate,
// it fails with errSessions rather than end another session.
func (d *Database) snapshotTemplate(ctx context.Context, c comment, terminate bool) (migrator.Snapshot, error) {
	c.Method = MethodTemplate
	id := d.snapPrefix() + stamp(c.Taken)
	admin, err := d.adminConn(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	defer admin.Close()
	// The write counters are read once every other session has ended (a
	// backend publishes its counters when it exits), through a session
	// opened before and spared by the drain, which ends it before the copy.
	counting, err := d.conn(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	defer counting.Close()
	var spare int
	if err := counting.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&spare); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	if !terminate {
		// Checked before refusing connections too, so that a busy database
		// does not see a connection refused for nothing.
		if err := noOtherSessions(ctx, admin, d.name, spare); err != nil {
			return migrator.Snapshot{}, err
		}
	}
	err = d.exclusive(ctx, admin, d.name, spare, terminate, func() error {
		var err error
		if c.Stats, err = readStats(ctx, counting); err != nil {
			return err
		}
		if err := counting.Close(); err != nil {
			return err
		}
		if err := d.drain(ctx, admin, d.name, 0); err != nil {
			return err
		}
		_, err = admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s STRATEGY %s`, quote(id), quote(d.name), d.drv.Strategy))
		return err
	})
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s with CREATE DATABASE TEMPLATE: %w", d.key, err)
	}
	b, _ := json.Marshal(c)
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`COMMENT ON DATABASE %s IS '%s'`, quote(id), strings.ReplaceAll(string(b), "'", "''"))); err != nil {
		d.dropDatabase(context.WithoutCancel(ctx), admin, id)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: label copy %s: %w", d.key, id, err)
	}
	s, err := d.Inspect(ctx, id)
	if err != nil {
		d.dropDatabase(context.WithoutCancel(ctx), admin, id)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: check copy: %w", d.key, err)
	}
	if s.Version != c.Version || s.Dirty != c.Dirty {
		d.dropDatabase(context.WithoutCancel(ctx), admin, id)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: copy %s holds version %d (dirty %v), the database %d (dirty %v): it changed during the copy; try again",
			d.key, id, s.Version, s.Dirty, c.Version, c.Dirty)
	}
	return s, nil
}

// exclusive runs fn while database name accepts no connections and has no
// other session but the backend spare (0: none), terminating the others, or,
// without terminate, failing with errSessions when there are; it restores
// the database's previous ALLOW_CONNECTIONS.
func (d *Database) exclusive(ctx context.Context, admin *sql.DB, name string, spare int, terminate bool, fn func() error) error {
	var allow bool
	if err := admin.QueryRowContext(ctx, `SELECT datallowconn FROM pg_database WHERE datname = $1`, name).Scan(&allow); err != nil {
		return fmt.Errorf("read database %s: %w", name, err)
	}
	if allow {
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS false`, quote(name))); err != nil {
			return fmt.Errorf("refuse new connections to %s: %w", name, err)
		}
		defer func() {
			// Must run even when ctx is done: a database left refusing
			// connections is an outage.
			if _, err := admin.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS true`, quote(name))); err != nil {
				_ = err // reported by the next Open; nothing better to do here
			}
		}()
	}
	if !terminate {
		if err := noOtherSessions(ctx, admin, name, spare); err != nil {
			return err
		}
	}
	if err := d.drain(ctx, admin, name, spare); err != nil {
		return err
	}
	return fn()
}

// noOtherSessions fails with errSessions when a session other than this
// one and spare is connected to database name.
func noOtherSessions(ctx context.Context, admin *sql.DB, name string, spare int) error {
	var others int
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND pid <> $2`, name, spare).Scan(&others); err != nil {
		return fmt.Errorf("count sessions on %s: %w", name, err)
	}
	if others > 0 {
		return fmt.Errorf("%w to %s (%d)", errSessions, name, others)
	}
	return nil
}

// drain terminates the other sessions on database name, but the backend
// spare (0: none), and waits until they are gone.
func (d *Database) drain(ctx context.Context, admin *sql.DB, name string, spare int) error {
	deadline := time.Now().Add(drainTimeout)
	for {
		var left int
		err := admin.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2) t`, name, spare).Scan(&left)
		if err != nil {
			return fmt.Errorf("terminate sessions on %s: %w (the migrator's role needs pg_signal_backend or superuser)", name, err)
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("terminate sessions on %s: %d still connected after %v", name, left, drainTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // sessions end asynchronously after the signal
		}
	}
}

func (d *Database) dropDatabase(ctx context.Context, admin *sql.DB, name string) error {
	_, err := admin.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, quote(name)))
	return err
}

// dumpDir is the directory of this server's dumps.
func (d *Database) dumpDir() string {
	base := d.drv.DumpDir
	if base == "" {
		base = filepath.Join(os.TempDir(), "cutover-pg-snapshots")
	}
	server := strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(strings.TrimPrefix(strings.TrimSuffix(d.key, "/"+d.name), "postgres://"))
	return filepath.Join(base, server)
}

// tool returns the path of pg_dump or pg_restore.
func (d *Database) tool(name string) string {
	if d.drv.PGBin != "" {
		return filepath.Join(d.drv.PGBin, name)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/lib/postgresql/15/bin", name)
}

// pgEnv passes the connection to pg_dump and pg_restore through the
// environment, so the password is not on a command line.
func pgEnv(cfg *pgx.ConnConfig) []string {
	env := append(os.Environ(), "PGHOST="+cfg.Host, fmt.Sprintf("PGPORT=%d", cfg.Port), "PGUSER="+cfg.User, "PGDATABASE="+cfg.Database)
	if cfg.Password != "" {
		env = append(env, "PGPASSWORD="+cfg.Password)
	}
	if cfg.TLSConfig == nil {
		env = append(env, "PGSSLMODE=disable")
	}
	return env
}

func (d *Database) runTool(ctx context.Context, cfg *pgx.ConnConfig, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, d.tool(name), args...)
	cmd.Env = pgEnv(cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 2000 {
			msg = msg[:2000] + "..."
		}
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return nil
}

func (d *Database) snapshotDump(ctx context.Context, c comment) (migrator.Snapshot, error) {
	c.Method = MethodDump
	dir := d.dumpDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: create %s: %w", d.key, dir, err)
	}
	id := d.snapPrefix() + stamp(c.Taken) + dumpSuffix
	final := filepath.Join(dir, id)
	tmp := final + ".tmp"
	if _, err := os.Stat(final); err == nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %s exists already; try again", d.key, final)
	}
	// The write counters are read before the copy: a write between the
	// two is in the copy and counted as after it, never the other way round.
	var err error
	if c.Stats, err = d.stats(ctx); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	db, err := d.conn(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	defer func() { _ = tx.Rollback() }()
	var exported string
	if err := tx.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&exported); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: export a transaction snapshot for pg_dump: %w", d.key, err)
	}
	if err := d.runTool(ctx, d.cfg, "pg_dump", "--format=custom", "--compress=0", "--snapshot="+exported, "--file="+tmp); err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s with pg_dump into %s: %w (check free space in %s)", d.key, tmp, err, dir)
	}
	_ = tx.Rollback()
	if err := d.runTool(ctx, d.cfg, "pg_restore", "--list", tmp); err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: check dump %s: %w", d.key, tmp, err)
	}
	b, _ := json.Marshal(c)
	if err := os.WriteFile(final+".json", b, 0o600); err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	return migrator.Snapshot{ID: id, Time: c.Taken, Location: final, Version: c.Version, Dirty: c.Dirty}, nil
}

// Snapshots lists the database's snapshots, newest first: template copies
// (databases whose COMMENT names this database) and dumps.
func (d *Database) Snapshots(ctx context.Context) ([]migrator.Snapshot, error) {
	admin, err := d.adminConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", d.key, err)
	}
	defer admin.Close()
	rows, err := admin.QueryContext(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE starts_with(datname, $1)`, d.snapPrefix())
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", d.key, err)
	}
	defer rows.Close()
	var out []migrator.Snapshot
	for rows.Next() {
		var name, desc string
		if err := rows.Scan(&name, &desc); err != nil {
			return nil, fmt.Errorf("list snapshots of %s: %w", d.key, err)
		}
		var c comment
		if json.Unmarshal([]byte(desc), &c) != nil || c.Of != d.name {
			continue
		}
		out = append(out, migrator.Snapshot{ID: name, Time: c.Taken, Location: "database " + name + " on " + strings.TrimSuffix(d.key, "/"+d.name)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", d.key, err)
	}
	entries, err := os.ReadDir(d.dumpDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list snapshots of %s: %w", d.key, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), d.snapPrefix()) && strings.HasSuffix(e.Name(), dumpSuffix) {
			if c, err := d.readSidecar(e.Name()); err == nil && c.Of == d.name {
				out = append(out, migrator.Snapshot{ID: e.Name(), Time: c.Taken, Location: filepath.Join(d.dumpDir(), e.Name())})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

func (d *Database) readSidecar(id string) (comment, error) {
	var c comment
	b, err := os.ReadFile(filepath.Join(d.dumpDir(), id+".json"))
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(b, &c)
}

// valid refuses ids that are not snapshot names of this database.
func (d *Database) valid(id string) error {
	if !strings.HasPrefix(id, d.snapPrefix()) || strings.ContainsAny(id, `/\'"`) {
		return fmt.Errorf("snapshot %q of %s: %w: snapshot ids of this database start with %s", id, d.key, migrator.ErrSnapshotNotFound, d.snapPrefix())
	}
	return nil
}

// Inspect checks snapshot id and returns it with its version: a template
// copy is connected to and its version read; a dump is listed by pg_restore.
func (d *Database) Inspect(ctx context.Context, id string) (migrator.Snapshot, error) {
	if err := d.valid(id); err != nil {
		return migrator.Snapshot{}, err
	}
	if strings.HasSuffix(id, dumpSuffix) {
		c, err := d.readSidecar(id)
		if errors.Is(err, os.ErrNotExist) {
			return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w in %s", id, d.key, migrator.ErrSnapshotNotFound, d.dumpDir())
		}
		if err != nil || c.Of != d.name {
			return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: unreadable label %s.json (%v)", id, d.key, id, err)
		}
		p := filepath.Join(d.dumpDir(), id)
		if err := d.runTool(ctx, d.cfg, "pg_restore", "--list", p); err != nil {
			return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w", id, d.key, err)
		}
		return migrator.Snapshot{ID: id, Time: c.Taken, Location: p, Version: c.Version, Dirty: c.Dirty}, nil
	}
	admin, err := d.adminConn(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("inspect snapshot %s: %w", id, err)
	}
	defer admin.Close()
	var desc string
	err = admin.QueryRowContext(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`, id).Scan(&desc)
	if errors.Is(err, sql.ErrNoRows) {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w on the server", id, d.key, migrator.ErrSnapshotNotFound)
	}
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("inspect snapshot %s of %s: %w", id, d.key, err)
	}
	var c comment
	if json.Unmarshal([]byte(desc), &c) != nil || c.Of != d.name {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w (database %s is not labelled as one)", id, d.key, migrator.ErrSnapshotNotFound, id)
	}
	snap, err := open(ctx, d.dbConfig(id), "snapshot "+id)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	defer snap.Close()
	v, dirty, err := readVersion(ctx, snap)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("read migration version of snapshot %s: %w", id, err)
	}
	return migrator.Snapshot{ID: id, Time: c.Taken, Location: "database " + id + " on " + strings.TrimSuffix(d.key, "/"+d.name), Version: v, Dirty: dirty}, nil
}

// Restore replaces the database with snapshot id. The database is renamed
// aside (after its sessions are terminated and new ones refused), a new one
// with its name and owner is made from the snapshot (CREATE DATABASE
// TEMPLATE of the snapshot, or pg_restore of the dump), and the renamed one
// is kept as a snapshot of its own (a template snapshot labelled with the
// version it held): renaming costs nothing, where dropping costs about a
// third of the copy and a copy made beforehand all of it (see
// KeepsReplaced). If making the new one fails, the old one is renamed back.
// The restored snapshot stays. What belongs to the database rather than to
// its contents is carried over to the new one before it accepts connections
// (see dbMeta): owner, grants (datacl), settings (ALTER DATABASE ... SET and
// ALTER ROLE ... IN DATABASE ... SET), comment and connection limit.
func (d *Database) Restore(ctx context.Context, id string) (migrator.Snapshot, error) {
	snap, err := d.Inspect(ctx, id)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("refuse to restore: %w", err)
	}
	admin, err := d.adminConn(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s: %w", d.key, err)
	}
	defer admin.Close()
	meta, err := readMeta(ctx, admin, d.name)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s: %w", d.key, err)
	}
	owner := meta.owner
	// The replaced state's label: read now, while it is the database.
	// A state whose version cannot be read is labelled dirty at 0: only an
	// operator would restore it.
	replacedVersion, replacedDirty, err := d.Version(ctx)
	if err != nil {
		replacedVersion, replacedDirty = 0, true
	}
	taken := time.Now().UTC()
	now := stamp(taken)
	short := d.name
	if len(short) > maxPrefix {
		short = short[:maxPrefix]
	}
	aside := d.snapPrefix() + now // kept as a snapshot once the restore is done

	var build func() error
	if strings.HasSuffix(id, dumpSuffix) {
		// Restore into a scratch database first: the live one is only
		// touched once the dump restored completely.
		scratch := short + "_new_" + now
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE template0 OWNER %s`, quote(scratch), quote(owner))); err != nil {
			return migrator.Snapshot{}, fmt.Errorf("restore %s from %s: create %s: %w (the database is unchanged)", d.key, id, scratch, err)
		}
		if err := d.runTool(ctx, d.dbConfig(scratch), "pg_restore", "--exit-on-error", "--dbname="+scratch, snap.Location); err != nil {
			_ = d.dropDatabase(context.WithoutCancel(ctx), admin, scratch)
			return migrator.Snapshot{}, fmt.Errorf("restore %s from %s: %w (the database is unchanged)", d.key, id, err)
		}
		if err := meta.apply(ctx, admin, scratch); err != nil {
			_ = d.dropDatabase(context.WithoutCancel(ctx), admin, scratch)
			return migrator.Snapshot{}, fmt.Errorf("restore %s from %s: %w (the database is unchanged)", d.key, id, err)
		}
		build = func() error {
			_, err := admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, quote(scratch), quote(d.name)))
			return err
		}
	} else {
		build = func() error {
			// Inspect's own session on the snapshot may not have ended yet.
			if err := d.drain(ctx, admin, id, 0); err != nil {
				return err
			}
			if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s OWNER %s STRATEGY %s`, quote(d.name), quote(id), quote(owner), d.drv.Strategy)); err != nil {
				return err
			}
			// Before connections are allowed again: a revoked CONNECT
			// must not be open for a moment.
			if err := meta.apply(ctx, admin, d.name); err != nil {
				_ = d.dropDatabase(context.WithoutCancel(ctx), admin, d.name)
				return err
			}
			return nil
		}
	}

	err = d.exclusive(ctx, admin, d.name, 0, true, func() error {
		if _, err := admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, quote(d.name), quote(aside))); err != nil {
			return fmt.Errorf("rename %s aside: %w (the database is unchanged)", d.name, err)
		}
		if err := build(); err != nil {
			if _, rerr := admin.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, quote(aside), quote(d.name))); rerr != nil {
				return fmt.Errorf("make %s from snapshot %s: %w; and renaming the old database %s back failed: %v: rename it by hand", d.name, id, err, aside, rerr)
			}
			return fmt.Errorf("make %s from snapshot %s: %w (the database is unchanged)", d.name, id, err)
		}
		return nil
	})
	// exclusive turned connections back on for the name d.name, which now
	// is the new database; the old one keeps refusing them until dropped.
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s: %w", d.key, err)
	}
	// exclusive left the replaced database refusing connections: allow them
	// again so that it can be inspected and restored like any snapshot.
	b, _ := json.Marshal(comment{Of: d.name, Taken: taken, Method: MethodTemplate, Version: replacedVersion, Dirty: replacedDirty})
	for _, q := range []string{
		fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS true`, quote(aside)),
		fmt.Sprintf(`COMMENT ON DATABASE %s IS '%s'`, quote(aside), strings.ReplaceAll(string(b), "'", "''")),
	} {
		if _, err := admin.ExecContext(context.WithoutCancel(ctx), q); err != nil {
			return migrator.Snapshot{}, fmt.Errorf("restore %s: restored, but labelling the replaced database %s as a snapshot failed: %w; drop it by hand when it is not needed", d.key, aside, err)
		}
	}
	// The runs since the snapshot are undone: their records go.
	_, _ = runmarks.Forget(d.dumpDir(), d.snapPrefix(), snap.Time)
	return apply.Restored(ctx, d.Version, d.key, id, snap)
}

// SweepLeftovers removes what a pg_dump snapshot of the database left when
// its process died midway: a dump never renamed from its temporary name,
// and a label (.json) whose dump does not exist. The migrator runs it
// under the database's lock, after a migration. A template copy needs no
// sweep: PostgreSQL removes a database whose CREATE DATABASE failed.
func (d *Database) SweepLeftovers(ctx context.Context) ([]string, error) {
	dir := d.dumpDir()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
	}
	var removed []string
	var errs []error
	// ours tells this database's dump names from another's: the prefix, then
	// nothing but the time. A name cut to maxPrefix may be another
	// database's too, whose dump may be running: its temporary dumps are
	// left alone.
	ours := func(dump string) bool {
		stamp, ok := strings.CutPrefix(dump, d.snapPrefix())
		if !ok {
			return false
		}
		stamp, ok = strings.CutSuffix(stamp, dumpSuffix)
		_, err := time.Parse(snapTimeFormat, strings.Replace(stamp, "_", ".", 1)) // see stamp
		return ok && err == nil
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		leftover := false
		if dump, ok := strings.CutSuffix(name, ".tmp"); ok && ours(dump) && len(d.name) <= maxPrefix {
			leftover = true
		} else if dump, ok := strings.CutSuffix(name, ".json"); ok && ours(dump) {
			c, err := d.readSidecar(dump)
			_, statErr := os.Stat(filepath.Join(dir, dump))
			leftover = err == nil && c.Of == d.name && errors.Is(statErr, fs.ErrNotExist)
		}
		if !leftover {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	// Run records whose snapshot is gone.
	if admin, err := d.adminConn(ctx); err == nil {
		exists := func(id string) bool {
			if strings.HasSuffix(id, dumpSuffix) {
				_, err := os.Stat(filepath.Join(dir, id))
				return err == nil
			}
			var n int
			err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, id).Scan(&n)
			return err != nil || n > 0 // unknown: kept
		}
		for _, p := range runmarks.Orphans(dir, d.snapPrefix(), exists) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, p)
		}
		admin.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
	}
	return removed, nil
}

// DropSnapshot deletes snapshot id: the copy database, or the dump and its label.
func (d *Database) DropSnapshot(ctx context.Context, id string) error {
	if _, err := d.Inspect(ctx, id); errors.Is(err, migrator.ErrSnapshotNotFound) {
		return err
	}
	if err := runmarks.Remove(d.dumpDir(), id); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.key, err)
	}
	if strings.HasSuffix(id, dumpSuffix) {
		p := filepath.Join(d.dumpDir(), id)
		if err := errors.Join(os.Remove(p), os.Remove(p+".json")); err != nil {
			return fmt.Errorf("drop snapshot %s of %s: %w", id, d.key, err)
		}
		return nil
	}
	admin, err := d.adminConn(ctx)
	if err != nil {
		return fmt.Errorf("drop snapshot %s: %w", id, err)
	}
	defer admin.Close()
	if err := d.dropDatabase(ctx, admin, id); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.key, err)
	}
	return nil
}

// stats reads the write counters of every table of the database, migration
// bookkeeping tables aside, by "schema.table".
func (d *Database) stats(ctx context.Context) (map[string]counters, error) {
	db, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return readStats(ctx, db)
}

func readStats(ctx context.Context, db *sql.DB) (map[string]counters, error) {
	rows, err := db.QueryContext(ctx, `SELECT schemaname, relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables
		WHERE relname NOT IN ($1, $2, $3)`, migratepgx.DefaultMigrationsTable, ledger.Table, ledger.RunsTable)
	if err != nil {
		return nil, fmt.Errorf("read write counters (pg_stat_user_tables): %w", err)
	}
	defer rows.Close()
	out := map[string]counters{}
	for rows.Next() {
		var ns, rel string
		var c counters
		if err := rows.Scan(&ns, &rel, &c.Ins, &c.Upd, &c.Del); err != nil {
			return nil, fmt.Errorf("read write counters (pg_stat_user_tables): %w", err)
		}
		out[ns+"."+rel] = c
	}
	return out, rows.Err()
}

// KeepsReplaced reports that Restore keeps the database it replaces as a
// snapshot of its own, so the migrator takes no copy of it beforehand.
func (d *Database) KeepsReplaced() bool { return true }

// markWait bounds MarkRun's wait for the migrator's other sessions to end
// (and so publish their write counters).
const markWait = 10 * time.Second

// MarkRun takes the mark of the run in progress: the write counters once
// the run's sessions ended. A backend publishes its counters when it exits,
// and golang-migrate's session may still be exiting when Up returns: the
// mark waits for every other session named application_name appName (the
// migrator's) to end, up to markWait. A command migration's sessions ended
// with its container, before the migrator read the schema version.
func (d *Database) MarkRun(ctx context.Context) error {
	run, err := runmarks.Current(ctx, d, d.key)
	if err != nil {
		return err
	}
	db, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(markWait)
	for {
		var others int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = current_setting('application_name')`).Scan(&others); err != nil {
			return fmt.Errorf("mark the end of run %s: count the migrator's sessions: %w", run.ID, err)
		}
		if others == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond): // a backend exits within milliseconds of its client
		}
	}
	stats, err := readStats(ctx, db)
	if err != nil {
		return fmt.Errorf("mark the end of run %s: %w", run.ID, err)
	}
	b, err := json.Marshal(stats)
	if err != nil {
		return err
	}
	return runmarks.End(d.dumpDir(), run, string(b))
}

// WrittenAfter counts the writes to each table after snapshot id (see
// migrator.Loss) from pg_stat_user_tables: the counters now less those
// recorded with the snapshot, less each later run's own (its counters at
// its mark less those at its start). A table created since counts in full;
// a table whose counters went back (pg_stat_reset, or a restore made the
// database anew) counts from the reset.
func (d *Database) WrittenAfter(ctx context.Context, id string) (migrator.Loss, error) {
	if err := d.valid(id); err != nil {
		return migrator.Loss{}, err
	}
	fail := func(err error) (migrator.Loss, error) {
		return migrator.Loss{}, fmt.Errorf("count writes to %s after snapshot %s: %w", d.key, id, err)
	}
	c, err := d.label(ctx, id)
	if err != nil {
		return fail(err)
	}
	if c.Stats == nil {
		return fail(errors.New("the snapshot records no write counters (taken by an older migrator)"))
	}
	runs, err := runmarks.Since(d.dumpDir(), d.snapPrefix(), c.Taken)
	if err != nil {
		return fail(err)
	}
	now, err := d.stats(ctx)
	if err != nil {
		return fail(err)
	}
	// The applications' writes: from the snapshot to the first run's
	// start, from each run's mark to the next one's start, from the last
	// mark to now. A run without a mark adds nothing: the segment before it
	// goes on through it, its own writes included.
	var loss migrator.Loss
	prev := c.Stats
	for _, mk := range runs {
		start, end := map[string]counters{}, map[string]counters{}
		if json.Unmarshal([]byte(mk.Start), &start) != nil || !mk.Marked() || json.Unmarshal([]byte(mk.End), &end) != nil {
			loss.OwnIncluded = true
			continue
		}
		loss = loss.Plus(between(prev, start))
		prev = end
	}
	total := loss.Plus(between(prev, now))
	total.Counted = slices.Sorted(maps.Keys(now))
	return total, nil
}

// between counts, per table of to, the writes from the counters from to
// the counters to.
func between(from, to map[string]counters) migrator.Loss {
	var loss migrator.Loss
	for _, name := range slices.Sorted(maps.Keys(to)) {
		n, b := to[name], from[name]
		w := migrator.TableWrites{Table: name, Inserts: n.Ins - b.Ins, Updates: n.Upd - b.Upd, Deletes: n.Del - b.Del}
		if w.Inserts < 0 || w.Updates < 0 || w.Deletes < 0 {
			w = migrator.TableWrites{Table: name, Inserts: n.Ins, Updates: n.Upd, Deletes: n.Del}
		}
		if total := w.Inserts + w.Updates + w.Deletes; total > 0 {
			loss.Tables = append(loss.Tables, w)
			loss.Rows += total
		}
	}
	return loss
}

// label reads the label of snapshot id: the template database's comment or
// the dump's sidecar file.
func (d *Database) label(ctx context.Context, id string) (comment, error) {
	var c comment
	if strings.HasSuffix(id, dumpSuffix) {
		c, err := d.readSidecar(id)
		if errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("%w in %s", migrator.ErrSnapshotNotFound, d.dumpDir())
		}
		return c, err
	}
	admin, err := d.adminConn(ctx)
	if err != nil {
		return c, err
	}
	defer admin.Close()
	var desc string
	err = admin.QueryRowContext(ctx, `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`, id).Scan(&desc)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("%w on the server", migrator.ErrSnapshotNotFound)
	}
	if err != nil {
		return c, err
	}
	if json.Unmarshal([]byte(desc), &c) != nil || c.Of != d.name {
		return c, fmt.Errorf("%w (database %s is not labelled as one)", migrator.ErrSnapshotNotFound, id)
	}
	return c, nil
}

// dbMeta is what a database has outside its contents, which CREATE
// DATABASE and pg_restore do not carry: a restore gives it to the new
// database.
type dbMeta struct {
	owner     string
	acl       bool // datacl is set (not the default)
	grants    []grant
	settings  []setting
	comment   sql.NullString
	connLimit int
}

type grant struct {
	grantee   string // "" for PUBLIC
	privilege string
	grantable bool
}

type setting struct {
	role  string // "" for every role
	name  string
	value string
}

// readMeta reads the dbMeta of database name.
func readMeta(ctx context.Context, admin *sql.DB, name string) (dbMeta, error) {
	var m dbMeta
	var oid int64
	err := admin.QueryRowContext(ctx, `SELECT oid, pg_get_userbyid(datdba), datacl IS NOT NULL, shobj_description(oid, 'pg_database'), datconnlimit
		FROM pg_database WHERE datname = $1`, name).Scan(&oid, &m.owner, &m.acl, &m.comment, &m.connLimit)
	if err != nil {
		return m, fmt.Errorf("read owner, grants and settings of %s: %w", name, err)
	}
	rows, err := admin.QueryContext(ctx, `SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, a.is_grantable
		FROM pg_database d, aclexplode(d.datacl) a WHERE d.oid = $1 ORDER BY 1, 2`, oid)
	if err != nil {
		return m, fmt.Errorf("read grants of %s: %w", name, err)
	}
	for rows.Next() {
		var g grant
		if err := rows.Scan(&g.grantee, &g.privilege, &g.grantable); err != nil {
			rows.Close()
			return m, fmt.Errorf("read grants of %s: %w", name, err)
		}
		m.grants = append(m.grants, g)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return m, fmt.Errorf("read grants of %s: %w", name, err)
	}
	rows, err = admin.QueryContext(ctx, `SELECT CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, c.setting
		FROM pg_db_role_setting s, unnest(s.setconfig) c(setting) WHERE s.setdatabase = $1 ORDER BY 1, 2`, oid)
	if err != nil {
		return m, fmt.Errorf("read settings of %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var st setting
		var kv string
		if err := rows.Scan(&st.role, &kv); err != nil {
			return m, fmt.Errorf("read settings of %s: %w", name, err)
		}
		st.name, st.value, _ = strings.Cut(kv, "=")
		m.settings = append(m.settings, st)
	}
	return m, rows.Err()
}

// apply gives database name (just made, with owner m.owner) the grants,
// settings, comment and connection limit of m. A setting is applied as
// PostgreSQL stored it: a single value as a quoted literal, a list
// (search_path) set in this session with set_config, then stored with SET
// ... FROM CURRENT, so that it keeps its form.
func (m dbMeta) apply(ctx context.Context, admin *sql.DB, name string) error {
	db := quote(name)
	var stmts []string
	if m.acl {
		stmts = append(stmts, `REVOKE ALL ON DATABASE `+db+` FROM PUBLIC`, `REVOKE ALL ON DATABASE `+db+` FROM `+quote(m.owner))
		for _, g := range m.grants {
			to := "PUBLIC"
			if g.grantee != "" {
				to = quote(g.grantee)
			}
			q := fmt.Sprintf(`GRANT %s ON DATABASE %s TO %s`, g.privilege, db, to)
			if g.grantable {
				q += ` WITH GRANT OPTION`
			}
			stmts = append(stmts, q)
		}
	}
	if m.comment.Valid {
		stmts = append(stmts, fmt.Sprintf(`COMMENT ON DATABASE %s IS '%s'`, db, strings.ReplaceAll(m.comment.String, "'", "''")))
	}
	if m.connLimit != -1 {
		stmts = append(stmts, fmt.Sprintf(`ALTER DATABASE %s CONNECTION LIMIT %d`, db, m.connLimit))
	}
	for _, q := range stmts {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("give %s the grants and comment of the database it replaces: %s: %w", name, q, err)
		}
	}
	if len(m.settings) == 0 {
		return nil
	}
	// set_config and FROM CURRENT need one session.
	c, err := admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, st := range m.settings {
		target := `DATABASE ` + db
		if st.role != "" {
			target = `ROLE ` + quote(st.role) + ` IN DATABASE ` + db
		}
		var err error
		if !strings.Contains(st.value, ",") {
			_, err = c.ExecContext(ctx, fmt.Sprintf(`ALTER %s SET %s TO '%s'`, target, quote(st.name), strings.ReplaceAll(st.value, "'", "''")))
		} else {
			_, err = c.ExecContext(ctx, `SELECT set_config($1, $2, false)`, st.name, st.value)
			if err == nil {
				_, err = c.ExecContext(ctx, fmt.Sprintf(`ALTER %s SET %s FROM CURRENT`, target, quote(st.name)))
			}
			_, _ = c.ExecContext(context.WithoutCancel(ctx), `RESET `+quote(st.name))
		}
		if err != nil {
			return fmt.Errorf("give %s the setting %s=%s of the database it replaces: %w", name, st.name, st.value, err)
		}
	}
	return nil
}

// Fence modes (a request's fence).
const (
	FenceConnect  = "connect"
	FenceReadOnly = "read-only"
)

// Fence stops other roles from writing during a migration (a request's
// fence "connect"): CONNECT on the database is revoked from PUBLIC and from
// every role but the migrator's own, and their sessions are terminated.
// They are disconnected for the run, by choice: no write can then land
// after the snapshot. Superusers keep connecting (PostgreSQL does not check
// their privileges). unfence gives the database its grants back, as a
// restore does (dbMeta.apply), even when the run restored a snapshot.
//
// With mode FenceReadOnly they are not kept out but made read-only instead
// (fenceReadOnly).
func (d *Database) Fence(ctx context.Context, mode string) (unfence func(context.Context) error, err error) {
	switch mode {
	case FenceConnect:
	case FenceReadOnly:
		return d.fenceReadOnly(ctx)
	default:
		return nil, fmt.Errorf("fence %s: mode %q is unknown; use %s or %s", d.key, mode, FenceConnect, FenceReadOnly)
	}
	admin, err := d.adminConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("fence %s: %w", d.key, err)
	}
	meta, err := readMeta(ctx, admin, d.name)
	if err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("fence %s: %w", d.key, err)
	}
	unfence = func(ctx context.Context) error {
		defer admin.Close()
		if !meta.acl { // the default ACL, written out: PUBLIC connects and makes temporary tables
			meta.acl = true
			meta.grants = []grant{{"", "CONNECT", false}, {"", "TEMPORARY", false},
				{meta.owner, "CONNECT", false}, {meta.owner, "CREATE", false}, {meta.owner, "TEMPORARY", false}}
		}
		if err := meta.apply(ctx, admin, d.name); err != nil {
			return fmt.Errorf("lift the fence on %s: %w; give the grants back by hand", d.key, err)
		}
		return nil
	}
	var me string
	if err := admin.QueryRowContext(ctx, `SELECT current_user`).Scan(&me); err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("fence %s: %w", d.key, err)
	}
	db := quote(d.name)
	stmts := []string{`REVOKE CONNECT ON DATABASE ` + db + ` FROM PUBLIC`}
	roles := map[string]bool{meta.owner: true}
	for _, g := range meta.grants {
		if g.grantee != "" {
			roles[g.grantee] = true
		}
	}
	for r := range roles {
		if r != me {
			stmts = append(stmts, `REVOKE CONNECT ON DATABASE `+db+` FROM `+quote(r))
		}
	}
	for _, q := range stmts {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return nil, errors.Join(fmt.Errorf("fence %s: %s: %w", d.key, q, err), unfence(context.WithoutCancel(ctx)))
		}
	}
	// Their sessions end asynchronously: wait until they are gone, so that
	// no write of theirs commits after the snapshot.
	deadline := time.Now().Add(drainTimeout)
	for {
		var left int
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND backend_type = 'client backend' AND usename <> current_user) t`, d.name).Scan(&left); err != nil {
			return nil, errors.Join(fmt.Errorf("fence %s: end the other roles' sessions: %w", d.key, err), unfence(context.WithoutCancel(ctx)))
		}
		if left == 0 {
			return unfence, nil
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("fence %s: %d sessions of other roles still connected after %v", d.key, left, drainTimeout), unfence(context.WithoutCancel(ctx)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readOnlySetting is what fence read-only sets on the database.
const readOnlySetting = "default_transaction_read_only"

// fenceReadOnly makes the database read-only for every role but the
// migrator's own for the run (fence "read-only"): default_transaction_read_only
// is set on the database, and off for the migrator's role in it; the
// sessions open at the fence are terminated, so that they come back
// read-only. Reads go on during the run; a write fails ("cannot execute …
// in a read-only transaction"). A session that turns the setting off again
// can still write: it fences applications, not adversaries. A database or
// migrator role that sets default_transaction_read_only already is refused
// (the fence could not give the setting back as it was). unfence resets
// both settings, even when the run restored a snapshot (a restore carries
// the settings of the database it replaces, these included).
func (d *Database) fenceReadOnly(ctx context.Context) (unfence func(context.Context) error, err error) {
	admin, err := d.adminConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("fence %s: %w", d.key, err)
	}
	var me string
	var set bool
	if err := admin.QueryRowContext(ctx, `SELECT current_user, EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database db ON db.oid = s.setdatabase
		WHERE db.datname = $1 AND (s.setrole = 0 OR s.setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user))
		AND EXISTS (SELECT 1 FROM unnest(s.setconfig) c WHERE c LIKE $2))`, d.name, readOnlySetting+"=%").Scan(&me, &set); err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("fence %s: read its settings: %w", d.key, err)
	}
	if set {
		_ = admin.Close()
		return nil, fmt.Errorf("fence %s read-only: the database or the migrator's role in it sets %s already; the fence could not give it back as it was: remove that setting, or fence by connect", d.key, readOnlySetting)
	}
	db := quote(d.name)
	unfence = func(ctx context.Context) error {
		defer admin.Close()
		var errs []error
		for _, q := range []string{`ALTER DATABASE ` + db + ` RESET ` + readOnlySetting, `ALTER ROLE ` + quote(me) + ` IN DATABASE ` + db + ` RESET ` + readOnlySetting} {
			if _, err := admin.ExecContext(ctx, q); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", q, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("lift the read-only fence on %s: %w; reset %s by hand", d.key, err, readOnlySetting)
		}
		return nil
	}
	for _, q := range []string{`ALTER ROLE ` + quote(me) + ` IN DATABASE ` + db + ` SET ` + readOnlySetting + ` = off`, `ALTER DATABASE ` + db + ` SET ` + readOnlySetting + ` = on`} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			return nil, errors.Join(fmt.Errorf("fence %s: %s: %w", d.key, q, err), unfence(context.WithoutCancel(ctx)))
		}
	}
	// The sessions open now may write: end them and wait until they are
	// gone (those opened since are read-only).
	rows, err := admin.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND usename <> current_user`, d.name)
	var pids []int64
	for err == nil && rows.Next() {
		var pid int64
		err = rows.Scan(&pid)
		pids = append(pids, pid)
	}
	if rows != nil {
		err = errors.Join(err, rows.Err(), rows.Close())
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("fence %s: list the other roles' sessions: %w", d.key, err), unfence(context.WithoutCancel(ctx)))
	}
	deadline := time.Now().Add(drainTimeout)
	for len(pids) > 0 {
		var left int
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)) t`, pids).Scan(&left); err != nil {
			return nil, errors.Join(fmt.Errorf("fence %s: end the other roles' sessions: %w", d.key, err), unfence(context.WithoutCancel(ctx)))
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("fence %s: %d sessions of other roles still connected after %v", d.key, left, drainTimeout), unfence(context.WithoutCancel(ctx)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return unfence, nil
}
