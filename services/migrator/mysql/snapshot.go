package mysql

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/apply"
	"github.com/cutover-dev/cutover/services/migrator/internal/runmarks"
	"github.com/cutover-dev/cutover/services/migrator/internal/sqlrows"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// snapTimeFormat orders snapshot names by time and keeps them unique to the
// microsecond; stamp writes it with "_" for "." so it fits a database name.
const snapTimeFormat = "20060102T150405.000000"

func stamp(t time.Time) string { return strings.Replace(t.UTC().Format(snapTimeFormat), ".", "_", 1) }

// maxPrefix leaves room for "_snap_"/"_new_"/"_old_" and the time in a
// 64-character database name.
const maxPrefix = 64 - len("_snap_") - len(snapTimeFormat)

// dumpSuffix ends the ids of snapshots.
const dumpSuffix = ".sql"

// completed is the last comment mariadb-dump writes, only when it finished.
var completed = []byte("-- Dump completed")

// label is the sidecar (<id>.json) of a dump: what it is a snapshot of, and
// what Inspect, Restore and WrittenAfter check against.
type label struct {
	Of      string    `json:"cutover_snapshot_of"`
	Server  string    `json:"server"`
	Taken   time.Time `json:"taken"`
	Method  string    `json:"method"`
	Version uint      `json:"version"`
	Dirty   bool      `json:"dirty"`
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
}

// querier is a pool, a connection or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (d *Database) short() string {
	if len(d.name) > maxPrefix {
		return d.name[:maxPrefix]
	}
	return d.name
}

func (d *Database) snapPrefix() string { return d.short() + "_snap_" }

func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// dumpDir is the directory of this server's dumps.
func (d *Database) dumpDir() string {
	base := d.drv.DumpDir
	if base == "" {
		base = filepath.Join(os.TempDir(), "cutover-mysql-snapshots")
	}
	return filepath.Join(base, strings.NewReplacer(":", "_", "/", "_", "[", "", "]", "").Replace(d.cfg.Addr))
}

// tool returns the path of a client program, the MariaDB name first.
func (d *Database) tool(names ...string) string {
	for _, n := range names {
		if d.drv.Bin != "" {
			if p := filepath.Join(d.drv.Bin, n); fileExists(p) {
				return p
			}
			continue
		}
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return names[0]
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// optionFile writes the connection, password included, to a file only the
// migrator's user can read, for the client programs' --defaults-file: no
// secret on a command line or in the environment of a listed process. The
// caller removes it.
func (d *Database) optionFile() (string, error) {
	f, err := os.CreateTemp("", "cutover-mysql-*.cnf")
	if err != nil {
		return "", fmt.Errorf("write client options: %w", err)
	}
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	host, port, _ := strings.Cut(d.cfg.Addr, ":")
	if i := strings.LastIndex(d.cfg.Addr, ":"); i >= 0 { // [v6]:port
		host, port = strings.Trim(d.cfg.Addr[:i], "[]"), d.cfg.Addr[i+1:]
	}
	fmt.Fprintf(f, "[client]\nprotocol=TCP\nhost=%s\nport=%s\nuser=\"%s\"\npassword=\"%s\"\n", host, port, esc.Replace(d.cfg.User), esc.Replace(d.cfg.Passwd))
	if d.cfg.TLSConfig != "" && d.cfg.TLSConfig != "false" {
		fmt.Fprintln(f, "ssl")
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("write client options: %w", err)
	}
	return f.Name(), nil
}

// tail keeps the last bytes written to it, for error messages.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2000 {
		t.b = t.b[len(t.b)-2000:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.b)) }

// unsupported lists what a dump restore would not carry over: views,
// stored routines and events (their definitions name the database), so a
// snapshot refuses them rather than restore something incomplete.
func unsupported(ctx context.Context, db querier, name string) ([]string, error) {
	return sqlrows.Strings(ctx, db, `
		SELECT CONCAT('view ', table_name) FROM information_schema.views WHERE table_schema = ?
		UNION ALL SELECT CONCAT(LOWER(routine_type), ' ', routine_name) FROM information_schema.routines WHERE routine_schema = ?
		UNION ALL SELECT CONCAT('event ', event_name) FROM information_schema.events WHERE event_schema = ?`, name, name, name)
}

// Snapshot dumps the database with mariadb-dump --single-transaction: one
// consistent InnoDB snapshot, read without blocking the service's writers
// (no table locks). The dump goes to a temporary file, hashed as it is
// written, and is renamed to its id once mariadb-dump exited cleanly and
// wrote its completion line; a .json label records the version, the size
// and the SHA-256.
func (d *Database) Snapshot(ctx context.Context) (migrator.Snapshot, error) {
	var s migrator.Snapshot
	err := d.locked(ctx, "snapshot", func() error {
		var err error
		s, err = d.snapshot(ctx)
		return err
	})
	return s, err
}

func (d *Database) snapshot(ctx context.Context) (migrator.Snapshot, error) {
	now := time.Now().UTC()
	db, err := d.conn(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	defer db.Close()
	if objs, err := unsupported(ctx, db, d.name); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: list views, routines and events: %w", d.key, err)
	} else if len(objs) > 0 {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: the database has %s; the mysql driver's restore carries tables and triggers only, so it refuses to snapshot what it could not restore whole (drop them, or snapshot by hand)",
			d.key, strings.Join(objs, ", "))
	}
	v, dirty, err := readVersion(ctx, db)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	l := label{Of: d.name, Server: d.cfg.Addr, Taken: now, Method: "dump", Version: v, Dirty: dirty}
	dir := d.dumpDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: create %s: %w", d.key, dir, err)
	}
	switch {
	case d.method == MethodBackup:
		return d.snapshotBackup(ctx, db, l, dir, now)
	case d.method == MethodAuto && d.autoMethod(ctx, db) == MethodBackup:
		// auto falls back to the dump when the backup fails (the
		// migrator's user lacks a privilege mariadb-backup needs, ...).
		s, err := d.snapshotBackup(ctx, db, l, dir, now)
		if err == nil {
			return s, nil
		}
		l.Taken = time.Now().UTC()
		s, derr := d.dumpSnapshot(ctx, db, l, dir, l.Taken)
		if derr != nil {
			return s, errors.Join(err, derr)
		}
		return s, nil
	}
	return d.dumpSnapshot(ctx, db, l, dir, now)
}

// dumpSnapshot takes a snapshot with mariadb-dump (see Snapshot).
func (d *Database) dumpSnapshot(ctx context.Context, db *sql.DB, l label, dir string, now time.Time) (migrator.Snapshot, error) {
	id, final, tmp, opts, err := d.newSnapshot(dir, now, dumpSuffix)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	defer os.Remove(opts)
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	fail := func(err error) (migrator.Snapshot, error) {
		_ = out.Close()
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s with mariadb-dump into %s: %w (check free space in %s)", d.key, tmp, err, dir)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(out, h), 1<<20)
	var stderr tail
	cmd := exec.CommandContext(ctx, d.tool("mariadb-dump", "mysqldump"), "--defaults-file="+opts,
		"--single-transaction", "--quick", "--skip-lock-tables", "--triggers", "--hex-blob",
		"--default-character-set=utf8mb4", "--skip-dump-date", d.name)
	cmd.Stdout = bw
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fail(fmt.Errorf("%w: %s", err, stderr.String()))
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	size, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	if err := checkCompleted(tmp, size); err != nil {
		return fail(err)
	}
	l.Size, l.SHA256 = size, hex.EncodeToString(h.Sum(nil))
	if err := l.publish(tmp, final); err != nil {
		return fail(err)
	}
	return migrator.Snapshot{ID: id, Time: now, Location: final, Version: l.Version, Dirty: l.Dirty}, nil
}

// publish writes the label of the snapshot written at tmp next to its final
// path, then renames it there: a snapshot under its final name is complete
// and labelled. On failure the label is removed again; tmp is the caller's.
func (l label) publish(tmp, final string) error {
	b, _ := json.Marshal(l)
	if err := os.WriteFile(final+".json", b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(final + ".json")
		return err
	}
	return nil
}

// newSnapshot names a new snapshot taken now in dir (id, its final path,
// the temporary one it is written to) and writes the client programs'
// option file (opts; the caller removes it).
func (d *Database) newSnapshot(dir string, now time.Time, suffix string) (id, final, tmp, opts string, err error) {
	id = d.snapPrefix() + stamp(now) + suffix
	final = filepath.Join(dir, id)
	if fileExists(final) {
		return "", "", "", "", fmt.Errorf("snapshot %s: %s exists already; try again", d.key, final)
	}
	if opts, err = d.optionFile(); err != nil {
		return "", "", "", "", fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	return id, final, final + ".tmp", opts, nil
}

// checkCompleted checks that the dump of size bytes at p ends with
// mariadb-dump's completion line.
func checkCompleted(p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != size {
		return fmt.Errorf("dump %s is %d bytes, its label says %d: it was changed or cut", p, fi.Size(), size)
	}
	buf := make([]byte, min(size, 256))
	if _, err := f.ReadAt(buf, size-int64(len(buf))); err != nil {
		return err
	}
	if !bytes.Contains(buf, completed) {
		return fmt.Errorf("dump %s does not end with mariadb-dump's %q line: it is cut short", p, completed)
	}
	return nil
}

// Snapshots lists the database's dumps, newest first.
func (d *Database) Snapshots(ctx context.Context) ([]migrator.Snapshot, error) {
	entries, err := os.ReadDir(d.dumpDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", d.key, err)
	}
	var out []migrator.Snapshot
	for _, e := range entries {
		if d.ours(e.Name()) {
			if l, err := d.readLabel(e.Name()); err == nil && l.Of == d.name {
				out = append(out, migrator.Snapshot{ID: e.Name(), Time: l.Taken, Location: filepath.Join(d.dumpDir(), e.Name())})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// ours tells this database's dump names from another's: the prefix, then
// nothing but the time and the suffix.
func (d *Database) ours(id string) bool {
	st, ok := strings.CutPrefix(id, d.snapPrefix())
	if !ok {
		return false
	}
	st, ok = strings.CutSuffix(st, dumpSuffix)
	if !ok {
		st, ok = strings.CutSuffix(st, backupSuffix)
	}
	_, err := time.Parse(snapTimeFormat, strings.Replace(st, "_", ".", 1))
	return ok && err == nil
}

func (d *Database) readLabel(id string) (label, error) {
	var l label
	b, err := os.ReadFile(filepath.Join(d.dumpDir(), id+".json"))
	if err != nil {
		return l, err
	}
	return l, json.Unmarshal(b, &l)
}

// Inspect checks snapshot id (its label, its size and the completion line;
// Restore also checks its SHA-256 while it loads it) and returns it.
func (d *Database) Inspect(ctx context.Context, id string) (migrator.Snapshot, error) {
	l, err := d.label(id)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	p := filepath.Join(d.dumpDir(), id)
	if !fileExists(p) {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w: %s is missing (its label is there)", id, d.key, migrator.ErrSnapshotNotFound, p)
	}
	check := func() error { return checkCompleted(p, l.Size) }
	if l.Method == MethodBackup {
		check = func() error { return inspectBackup(p, l) }
	}
	if err := check(); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w", id, d.key, err)
	}
	return migrator.Snapshot{ID: id, Time: l.Taken, Location: p, Version: l.Version, Dirty: l.Dirty}, nil
}

// label reads and checks the label of snapshot id.
func (d *Database) label(id string) (label, error) {
	if !d.ours(id) {
		return label{}, fmt.Errorf("snapshot %q of %s: %w: snapshot ids of this database are %s<time>%s or %s", id, d.key, migrator.ErrSnapshotNotFound, d.snapPrefix(), dumpSuffix, backupSuffix)
	}
	l, err := d.readLabel(id)
	if errors.Is(err, fs.ErrNotExist) {
		return l, fmt.Errorf("snapshot %s of %s: %w in %s", id, d.key, migrator.ErrSnapshotNotFound, d.dumpDir())
	}
	if err != nil || l.Of != d.name {
		return l, fmt.Errorf("snapshot %s of %s: unreadable label %s.json (%v)", id, d.key, id, err)
	}
	return l, nil
}

// trigger is one trigger's definition, as SHOW CREATE TRIGGER gives it.
type trigger struct{ name, sqlMode, create string }

// triggers reads the definitions of the triggers of database name.
func triggers(ctx context.Context, db *sql.DB, name string) ([]trigger, error) {
	names, err := sqlrows.Strings(ctx, db, `SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = ? ORDER BY action_order, trigger_name`, name)
	if err != nil {
		return nil, err
	}
	var out []trigger
	for _, n := range names {
		// Trigger, sql_mode, SQL Original Statement, charset, collation,
		// database collation, created.
		var t trigger
		var cs, coll, dbColl, created sql.NullString
		if err := db.QueryRowContext(ctx, `SHOW CREATE TRIGGER `+quote(name)+`.`+quote(n)).Scan(&t.name, &t.sqlMode, &t.create, &cs, &coll, &dbColl, &created); err != nil {
			return nil, fmt.Errorf("read trigger %s.%s: %w", name, n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

func dropTriggers(ctx context.Context, db *sql.DB, name string, ts []trigger) error {
	for _, t := range ts {
		if _, err := db.ExecContext(ctx, `DROP TRIGGER IF EXISTS `+quote(name)+`.`+quote(t.name)); err != nil {
			return fmt.Errorf("drop trigger %s.%s: %w", name, t.name, err)
		}
	}
	return nil
}

// createTriggers creates ts in the database conn is on, each under its own
// sql_mode.
func createTriggers(ctx context.Context, conn *sql.Conn, ts []trigger) error {
	for _, t := range ts {
		if _, err := conn.ExecContext(ctx, `SET SESSION sql_mode = ?`, t.sqlMode); err != nil {
			return fmt.Errorf("create trigger %s: %w", t.name, err)
		}
		if _, err := conn.ExecContext(ctx, t.create); err != nil {
			return fmt.Errorf("create trigger %s: %w", t.name, err)
		}
	}
	return nil
}

// baseTables lists the base tables of database name.
func baseTables(ctx context.Context, db querier, name string) ([]string, error) {
	return sqlrows.Strings(ctx, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name`, name)
}

// Restore replaces the database's tables and triggers with snapshot id,
// keeping the database itself: its grants (database, table and column
// grants name it and its tables, which keep their names), its users, and
// its options (character set, collation) stay as they are.
//
// The dump is first loaded into a scratch database <db>_new_<snapshot time>
// (its SHA-256 checked as it streams; a failure there leaves the database
// untouched; one WrittenAfter loaded for its count is reused), then one
// RENAME TABLE statement, atomic in MariaDB and MySQL,
// moves every current table into <db>_old_<time> and every restored table
// into the database. RENAME TABLE refuses to move a table with triggers to
// another database, so triggers are dropped before it (those of the
// database are put back if the rename fails) and the snapshot's are created
// after it. <db>_old_<time> is dropped at the end: the migrator snapshots
// the current state before it restores (KeepsReplaced is not implemented).
func (d *Database) Restore(ctx context.Context, id string) (migrator.Snapshot, error) {
	var s migrator.Snapshot
	err := d.locked(ctx, "restore", func() error {
		var err error
		s, err = d.restore(ctx, id)
		return err
	})
	return s, err
}

func (d *Database) restore(ctx context.Context, id string) (migrator.Snapshot, error) {
	snap, err := d.Inspect(ctx, id)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("refuse to restore: %w", err)
	}
	l, err := d.label(id)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("refuse to restore: %w", err)
	}
	admin, err := d.connTo(ctx, "")
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s: %w", d.key, err)
	}
	defer admin.Close()
	cleanup := context.WithoutCancel(ctx)
	scratch, err := d.loaded(ctx, admin, id, snap, l)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s from %s: %w (the database is unchanged)", d.key, id, err)
	}
	dropScratch := func() { _, _ = admin.ExecContext(cleanup, `DROP DATABASE IF EXISTS `+quote(scratch)) }
	aside := d.short() + "_old_" + stamp(time.Now())
	if err := d.swap(ctx, admin, scratch, aside); err != nil {
		dropScratch()
		return migrator.Snapshot{}, fmt.Errorf("restore %s from %s: %w", d.key, id, err)
	}
	dropScratch()
	// The runs since the snapshot are undone: their records and marks go.
	forgotten, _ := runmarks.Forget(d.dumpDir(), d.snapPrefix(), snap.Time)
	for _, r := range forgotten {
		_, _ = admin.ExecContext(cleanup, `DROP DATABASE IF EXISTS `+quote(d.markFor(r.Snapshot)))
	}
	if _, err := admin.ExecContext(cleanup, `DROP DATABASE IF EXISTS `+quote(aside)); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s: restored, but dropping the replaced tables in %s failed: %w; drop it by hand", d.key, aside, err)
	}
	return apply.Restored(ctx, d.Version, d.key, id, snap)
}

// load streams the dump at p into database scratch with the mariadb client,
// and checks its SHA-256 against want.
func (d *Database) load(ctx context.Context, p, scratch, want string) error {
	opts, err := d.optionFile()
	if err != nil {
		return err
	}
	defer os.Remove(opts)
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	var stderr tail
	cmd := exec.CommandContext(ctx, d.tool("mariadb", "mysql"), "--defaults-file="+opts, "--binary-mode",
		"--default-character-set=utf8mb4", "--max-allowed-packet=1G", "--database="+scratch)
	cmd.Stdin = io.TeeReader(bufio.NewReaderSize(f, 1<<20), h)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("load %s into %s: %w: %s", p, scratch, err, stderr.String())
	}
	if got := hex.EncodeToString(h.Sum(nil)); want != "" && got != want {
		return fmt.Errorf("load %s: its SHA-256 is %s, its label says %s: the dump was changed or damaged", p, got, want)
	}
	return nil
}

// swap moves the database's tables into aside and scratch's into the
// database in one RENAME TABLE statement, triggers dropped around it.
func (d *Database) swap(ctx context.Context, admin *sql.DB, scratch, aside string) error {
	cleanup := context.WithoutCancel(ctx)
	liveTables, err := baseTables(ctx, admin, d.name)
	if err != nil {
		return fmt.Errorf("list tables of %s: %w (the database is unchanged)", d.name, err)
	}
	newTables, err := baseTables(ctx, admin, scratch)
	if err != nil {
		return fmt.Errorf("list tables of %s: %w (the database is unchanged)", scratch, err)
	}
	liveTrg, err := triggers(ctx, admin, d.name)
	if err != nil {
		return fmt.Errorf("read triggers of %s: %w (the database is unchanged)", d.name, err)
	}
	newTrg, err := triggers(ctx, admin, scratch)
	if err != nil {
		return fmt.Errorf("read triggers of %s: %w (the database is unchanged)", scratch, err)
	}
	if err := dropTriggers(ctx, admin, scratch, newTrg); err != nil {
		return fmt.Errorf("%w (the database is unchanged)", err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+quote(aside)); err != nil {
		return fmt.Errorf("create %s: %w (the database is unchanged)", aside, err)
	}
	live, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer live.Close()
	conn, err := live.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	putBack := func(cause error) error {
		if err := createTriggers(cleanup, conn, liveTrg); err != nil {
			return fmt.Errorf("%w; and putting the database's triggers back failed: %v: recreate them by hand", cause, err)
		}
		_, _ = admin.ExecContext(cleanup, `DROP DATABASE IF EXISTS `+quote(aside))
		return fmt.Errorf("%w (the database is unchanged)", cause)
	}
	if err := dropTriggers(ctx, admin, d.name, liveTrg); err != nil {
		return putBack(err)
	}
	var moves []string
	for _, t := range liveTables {
		moves = append(moves, quote(d.name)+"."+quote(t)+" TO "+quote(aside)+"."+quote(t))
	}
	for _, t := range newTables {
		moves = append(moves, quote(scratch)+"."+quote(t)+" TO "+quote(d.name)+"."+quote(t))
	}
	if len(moves) > 0 {
		if _, err := admin.ExecContext(ctx, `RENAME TABLE `+strings.Join(moves, ", ")); err != nil {
			return putBack(fmt.Errorf("swap the tables of %s and %s: %w", d.name, scratch, err))
		}
	}
	// From here the restored tables are in place: finish even if ctx ends.
	if err := createTriggers(cleanup, conn, newTrg); err != nil {
		return fmt.Errorf("tables restored, but creating the snapshot's triggers failed: %w; recreate them from the dump by hand", err)
	}
	return nil
}

// SweepLeftovers removes what an interrupted snapshot or restore of the
// database left: a dump never renamed from its temporary name, a label
// whose dump does not exist, and a scratch database <db>_new_<time> a
// restore was loading. The migrator runs it under the database's lock.
func (d *Database) SweepLeftovers(ctx context.Context) ([]string, error) {
	var removed []string
	var errs []error
	entries, err := os.ReadDir(d.dumpDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(d.dumpDir(), name)
		leftover := false
		if dump, ok := strings.CutSuffix(name, ".tmp"); ok && d.ours(dump) && len(d.name) <= maxPrefix {
			leftover = true
		} else if dump, ok := strings.CutSuffix(name, ".json"); ok && d.ours(dump) {
			l, err := d.readLabel(dump)
			leftover = err == nil && l.Of == d.name && !fileExists(filepath.Join(d.dumpDir(), dump))
		}
		if !leftover {
			continue
		}
		if err := removeSnapshot(p); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	for _, p := range runmarks.Orphans(d.dumpDir(), d.snapPrefix(), func(id string) bool { return fileExists(filepath.Join(d.dumpDir(), id)) }) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if len(d.name) <= maxPrefix {
		admin, err := d.connTo(ctx, "")
		if err != nil {
			return removed, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
		}
		defer admin.Close()
		rows, err := admin.QueryContext(ctx, `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?`, strings.ReplaceAll(d.short(), "_", `\_`)+`\_new\_%`)
		if err != nil {
			return removed, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
		}
		var scratch []string
		for rows.Next() {
			var n string
			if rows.Scan(&n) == nil {
				st := strings.TrimPrefix(n, d.short()+"_new_")
				if _, err := time.Parse(snapTimeFormat, strings.Replace(st, "_", ".", 1)); err == nil {
					scratch = append(scratch, n)
				}
			}
		}
		rows.Close()
		// Marks whose snapshot was dropped.
		marks, err := sqlrows.Strings(ctx, admin, `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?`, strings.ReplaceAll(d.short(), "_", `\_`)+`\_mark\_%`)
		if err != nil {
			return removed, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
		}
		for _, n := range marks {
			st := strings.TrimPrefix(n, d.short()+"_mark_")
			if _, err := time.Parse(snapTimeFormat, strings.Replace(st, "_", ".", 1)); err != nil {
				continue
			}
			if !fileExists(filepath.Join(d.dumpDir(), d.snapPrefix()+st+dumpSuffix)) && !fileExists(filepath.Join(d.dumpDir(), d.snapPrefix()+st+backupSuffix)) {
				scratch = append(scratch, n)
			}
		}
		for _, n := range scratch {
			if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quote(n)); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, "database "+n+" on "+d.cfg.Addr)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("sweep leftovers of %s: %w", d.key, err)
	}
	return removed, nil
}

// DropSnapshot deletes the dump id and its label.
func (d *Database) DropSnapshot(ctx context.Context, id string) error {
	if _, err := d.label(id); err != nil {
		return err
	}
	p := filepath.Join(d.dumpDir(), id)
	if err := removeSnapshot(p); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.key, err)
	}
	if err := os.Remove(p + ".json"); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.key, err)
	}
	if err := runmarks.Remove(d.dumpDir(), id); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.key, err)
	}
	if len(d.name) <= maxPrefix {
		admin, err := d.connTo(ctx, "")
		if err != nil {
			return fmt.Errorf("drop the mark of snapshot %s of %s: %w", id, d.key, err)
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quote(d.markFor(id))); err != nil {
			return fmt.Errorf("drop the mark of snapshot %s of %s: %w", id, d.key, err)
		}
	}
	return nil
}

// loadedComment marks a scratch database loaded completely from a dump
// (the dump's SHA-256 follows): only such a one is reused.
const loadedComment = "cutover: loaded from "

// scratchFor names the database snapshot id is loaded into: one per
// snapshot, so that the load WrittenAfter counts with serves the Restore
// that follows it.
func (d *Database) scratchFor(id string) string {
	return d.short() + "_new_" + strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(id, d.snapPrefix()), dumpSuffix), backupSuffix)
}

// loaded returns the scratch database holding snapshot id, loaded
// completely and checked: the one already marked so, or a new one, with the
// database's character set and collation, into which the dump is streamed.
func (d *Database) loaded(ctx context.Context, admin *sql.DB, id string, snap migrator.Snapshot, l label) (string, error) {
	scratch := d.scratchFor(id)
	var comment sql.NullString
	err := admin.QueryRowContext(ctx, `SELECT schema_comment FROM information_schema.schemata WHERE schema_name = ?`, scratch).Scan(&comment)
	if err == nil && l.SHA256 != "" && comment.String == loadedComment+l.SHA256 {
		return scratch, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("look for %s: %w", scratch, err)
	}
	var charset, collation string
	if err := admin.QueryRowContext(ctx, `SELECT default_character_set_name, default_collation_name FROM information_schema.schemata WHERE schema_name = ?`, d.name).Scan(&charset, &collation); err != nil {
		return "", fmt.Errorf("read the options of %s: %w", d.name, err)
	}
	drop := func() {
		_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+quote(scratch))
	}
	drop() // a load cut short
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s CHARACTER SET %s COLLATE %s`, quote(scratch), charset, collation)); err != nil {
		return "", fmt.Errorf("create %s: %w", scratch, err)
	}
	load := d.load
	if l.Method == MethodBackup {
		load = func(ctx context.Context, p, scratch, want string) error {
			return d.importBackup(ctx, admin, p, scratch, want)
		}
	}
	if err := load(ctx, snap.Location, scratch, l.SHA256); err != nil {
		drop()
		return "", err
	}
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s COMMENT '%s'`, quote(scratch), loadedComment+l.SHA256)); err != nil {
		drop()
		return "", fmt.Errorf("mark %s loaded: %w", scratch, err)
	}
	return scratch, nil
}

// bookkeeping are the migrator's and golang-migrate's own tables, which a
// write count leaves out.
var bookkeeping = map[string]bool{versionTable: true, ledger.Table: true, ledger.RunsTable: true}

// WrittenAfter counts, per table, the rows inserted, updated and deleted
// since snapshot id by applications, by comparing the database with the
// snapshot loaded into its scratch database (which the Restore that may
// follow reuses): rows matched by primary key, an update being a row whose
// columns present on both sides differ. A table created since counts its
// rows as inserts, one dropped since as deletes; a table without a primary
// key (or whose key changed) is listed as uncounted.
//
// The migrator's runs after the snapshot are left out: for each one with a
// mark (MarkRun's copy, database <db>_mark_<time>), the comparison stops at
// the run's start (its snapshot, loaded for the count when it is not id)
// and starts again from its mark.
func (d *Database) WrittenAfter(ctx context.Context, id string) (migrator.Loss, error) {
	fail := func(err error) (migrator.Loss, error) {
		return migrator.Loss{}, fmt.Errorf("count writes to %s after snapshot %s: %w", d.key, id, err)
	}
	snap, err := d.Inspect(ctx, id)
	if err != nil {
		return fail(err)
	}
	l, err := d.label(id)
	if err != nil {
		return fail(err)
	}
	admin, err := d.connTo(ctx, "")
	if err != nil {
		return migrator.Loss{}, err
	}
	defer admin.Close()
	scratch, err := d.loaded(ctx, admin, id, snap, l)
	if err != nil {
		return fail(err)
	}
	runs, err := runmarks.Since(d.dumpDir(), d.snapPrefix(), l.Taken)
	if err != nil {
		return fail(err)
	}
	var loss migrator.Loss
	prev := scratch
	for _, mk := range runs {
		if !mk.Marked() || mk.End != d.markFor(mk.Snapshot) || !d.hasMark(ctx, admin, mk.End) {
			// No mark, or its copy is gone: the comparison goes on
			// through the run, its own writes included.
			loss.OwnIncluded = true
			continue
		}
		if mk.Snapshot != id {
			seg, err := d.compareSnapshot(ctx, admin, mk.Snapshot, prev)
			if err != nil {
				loss.OwnIncluded = true
				continue
			}
			loss = loss.Plus(seg)
		}
		prev = mk.End
	}
	last, err := compare(ctx, admin, d.name, prev)
	if err != nil {
		return fail(err)
	}
	total := loss.Plus(last)
	total.Counted, total.Uncounted = last.Counted, last.Uncounted
	return total, nil
}

// compareSnapshot counts the writes from database older to snapshot id,
// loaded for it into its scratch database, dropped after.
func (d *Database) compareSnapshot(ctx context.Context, admin *sql.DB, id, older string) (migrator.Loss, error) {
	snap, err := d.Inspect(ctx, id)
	if err != nil {
		return migrator.Loss{}, err
	}
	l, err := d.label(id)
	if err != nil {
		return migrator.Loss{}, err
	}
	scratch, err := d.loaded(ctx, admin, id, snap, l)
	if err != nil {
		return migrator.Loss{}, err
	}
	defer func() {
		_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+quote(scratch))
	}()
	return compare(ctx, admin, scratch, older)
}

// markComment marks a mark database copied completely.
const markComment = "cutover: mark of run "

// markFor names the database MarkRun copies the tables into at the end of
// the run that snapshot id was taken for.
func (d *Database) markFor(id string) string {
	return d.short() + "_mark_" + strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(id, d.snapPrefix()), dumpSuffix), backupSuffix)
}

// hasMark reports whether mark database name exists and was copied
// completely.
func (d *Database) hasMark(ctx context.Context, admin *sql.DB, name string) bool {
	var comment sql.NullString
	err := admin.QueryRowContext(ctx, `SELECT schema_comment FROM information_schema.schemata WHERE schema_name = ?`, name).Scan(&comment)
	return err == nil && strings.HasPrefix(comment.String, markComment)
}

// MarkRun takes the mark of the run in progress: a copy of every table
// (bookkeeping aside), made on the server, into database <db>_mark_<time of
// the run's snapshot> (CREATE TABLE ... LIKE, then INSERT ... SELECT of the
// columns that are not generated, at READ COMMITTED so that the reads take
// no locks: the service's writers go on; each table is copied as of its own
// statement). WrittenAfter compares the database with it; DropSnapshot drops
// it with the snapshot.
func (d *Database) MarkRun(ctx context.Context) error {
	run, err := runmarks.Current(ctx, d, d.key)
	if err != nil {
		return err
	}
	if !d.ours(run.Snapshot) || len(d.name) > maxPrefix {
		return fmt.Errorf("mark the end of run %s: snapshot %q is not one of %s that a mark can be named after", run.ID, run.Snapshot, d.key)
	}
	mark := d.markFor(run.Snapshot)
	admin, err := d.connTo(ctx, "")
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := d.copyTables(ctx, admin, mark, run.ID); err != nil {
		_, _ = admin.ExecContext(context.WithoutCancel(ctx), `DROP DATABASE IF EXISTS `+quote(mark))
		return fmt.Errorf("mark the end of run %s: copy the tables into %s: %w", run.ID, mark, err)
	}
	return runmarks.End(d.dumpDir(), run, mark)
}

// copyTables copies the tables of the database into the new database mark
// (see MarkRun).
func (d *Database) copyTables(ctx context.Context, admin *sql.DB, mark, run string) error {
	// One connection, the pool's only one: the session's isolation level
	// holds for every copy.
	conn, err := admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var charset, collation string
	if err := conn.QueryRowContext(ctx, `SELECT default_character_set_name, default_collation_name FROM information_schema.schemata WHERE schema_name = ?`, d.name).Scan(&charset, &collation); err != nil {
		return fmt.Errorf("read the options of %s: %w", d.name, err)
	}
	if _, err := conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+quote(mark)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %s CHARACTER SET %s COLLATE %s`, quote(mark), charset, collation)); err != nil {
		return err
	}
	tables, err := baseTables(ctx, conn, d.name)
	if err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`); err != nil {
		return err
	}
	for _, t := range tables {
		if bookkeeping[t] {
			continue
		}
		cols, err := sqlrows.Strings(ctx, conn, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = ? AND table_name = ? AND extra NOT LIKE '%GENERATED%' ORDER BY ordinal_position`, d.name, t)
		if err != nil {
			return fmt.Errorf("table %s: %w", t, err)
		}
		var quoted []string
		for _, c := range cols {
			quoted = append(quoted, quote(c))
		}
		src, dst := quote(d.name)+"."+quote(t), quote(mark)+"."+quote(t)
		if _, err := conn.ExecContext(ctx, `CREATE TABLE `+dst+` LIKE `+src); err != nil {
			return fmt.Errorf("table %s: %w", t, err)
		}
		list := strings.Join(quoted, ", ")
		if _, err := conn.ExecContext(ctx, `INSERT INTO `+dst+` (`+list+`) SELECT `+list+` FROM `+src); err != nil {
			return fmt.Errorf("table %s: %w", t, err)
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %s COMMENT '%s'`, quote(mark), strings.ReplaceAll(markComment+run, "'", "''"))); err != nil {
		return fmt.Errorf("mark %s complete: %w", mark, err)
	}
	return nil
}

// compare counts the row differences between database live and database
// snap, table by table (see WrittenAfter).
func compare(ctx context.Context, db *sql.DB, live, snap string) (migrator.Loss, error) {
	tablesOf := func(name string) (map[string]bool, error) {
		ts, err := baseTables(ctx, db, name)
		out := map[string]bool{}
		for _, t := range ts {
			if !bookkeeping[t] {
				out[t] = true
			}
		}
		return out, err
	}
	lt, err := tablesOf(live)
	if err != nil {
		return migrator.Loss{}, err
	}
	st, err := tablesOf(snap)
	if err != nil {
		return migrator.Loss{}, err
	}
	all := map[string]bool{}
	maps.Copy(all, lt)
	maps.Copy(all, st)
	var loss migrator.Loss
	count := func(q string) (int64, error) {
		var n int64
		err := db.QueryRowContext(ctx, q).Scan(&n)
		return n, err
	}
	for _, t := range slices.Sorted(maps.Keys(all)) {
		w := migrator.TableWrites{Table: t}
		lq, sq := quote(live)+"."+quote(t), quote(snap)+"."+quote(t)
		switch {
		case !st[t]:
			if w.Inserts, err = count(`SELECT COUNT(*) FROM ` + lq); err != nil {
				return loss, fmt.Errorf("table %s: %w", t, err)
			}
		case !lt[t]:
			if w.Deletes, err = count(`SELECT COUNT(*) FROM ` + sq); err != nil {
				return loss, fmt.Errorf("table %s: %w", t, err)
			}
		default:
			lk, lcols, err := columns(ctx, db, live, t)
			if err != nil {
				return loss, fmt.Errorf("table %s: %w", t, err)
			}
			sk, scols, err := columns(ctx, db, snap, t)
			if err != nil {
				return loss, fmt.Errorf("table %s: %w", t, err)
			}
			if len(lk) == 0 || !slices.Equal(lk, sk) {
				loss.Uncounted = append(loss.Uncounted, t)
				continue
			}
			var on, same []string
			for _, k := range lk {
				on = append(on, "l."+quote(k)+" = s."+quote(k))
			}
			for _, c := range lcols {
				if slices.Contains(scols, c) && !slices.Contains(lk, c) {
					same = append(same, "l."+quote(c)+" <=> s."+quote(c))
				}
			}
			join := strings.Join(on, " AND ")
			if w.Inserts, err = count(fmt.Sprintf(`SELECT COUNT(*) FROM %s l LEFT JOIN %s s ON %s WHERE s.%s IS NULL`, lq, sq, join, quote(lk[0]))); err != nil {
				return loss, fmt.Errorf("table %s: %w", t, err)
			}
			if w.Deletes, err = count(fmt.Sprintf(`SELECT COUNT(*) FROM %s s LEFT JOIN %s l ON %s WHERE l.%s IS NULL`, sq, lq, join, quote(lk[0]))); err != nil {
				return loss, fmt.Errorf("table %s: %w", t, err)
			}
			if len(same) > 0 {
				if w.Updates, err = count(fmt.Sprintf(`SELECT COUNT(*) FROM %s l JOIN %s s ON %s WHERE NOT (%s)`, lq, sq, join, strings.Join(same, " AND "))); err != nil {
					return loss, fmt.Errorf("table %s: %w", t, err)
				}
			}
		}
		loss.Counted = append(loss.Counted, t)
		if n := w.Inserts + w.Updates + w.Deletes; n > 0 {
			loss.Rows += n
			loss.Tables = append(loss.Tables, w)
		}
	}
	return loss, nil
}

// columns returns the primary key columns (in key order) and every column
// of table t of database name.
func columns(ctx context.Context, db *sql.DB, name, t string) (key, cols []string, err error) {
	key, err = sqlrows.Strings(ctx, db, `SELECT column_name FROM information_schema.key_column_usage
		WHERE table_schema = ? AND table_name = ? AND constraint_name = 'PRIMARY' ORDER BY ordinal_position`, name, t)
	if err != nil {
		return nil, nil, err
	}
	cols, err = sqlrows.Strings(ctx, db, `SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position`, name, t)
	if err != nil {
		return nil, nil, err
	}
	return key, cols, nil
}
