package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	msqlite "modernc.org/sqlite"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/apply"
	"github.com/cutover-dev/cutover/services/migrator/internal/runmarks"
	"github.com/cutover-dev/cutover/services/migrator/internal/sqlrows"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// restoreSuffix names, after the database's path, the temporary copy a
// restore renames over the database.
const restoreSuffix = ".cutover-restore"

// snapTimeFormat orders snapshot names by time and keeps them unique.
const snapTimeFormat = "20060102T150405.000000000Z"

func (d *Database) snapPrefix() string { return filepath.Base(d.path) + ".snap-" }

// Snapshot copies the database into a temporary file, checks it (PRAGMA
// quick_check and its version), syncs it, records its checksum in a side
// file (see sumSuffix) and moves it into place under its final name.
//
// The fast path copies the file itself while this process holds the
// database's write lock (BEGIN IMMEDIATE) and, in WAL mode, once a
// checkpoint moved every WAL frame into the file: the file then holds every
// commit and nobody can change it until the copy ends. Since nothing can
// change, the database is checked during the copy, on another core, and the
// bytes are hashed on their way into the copy: the checked bytes are the
// copied bytes. The service's writers wait for the copy and the check (their
// busy timeout); readers go on. When some frames cannot be moved (a reader
// still needs the older pages) the copy goes through SQLite's online backup
// API instead, which copies every page in one read transaction, WAL frames
// included, without blocking writers in WAL mode, at a higher CPU cost; the
// copy is then checked and hashed once it is made.
func (d *Database) Snapshot(ctx context.Context) (migrator.Snapshot, error) {
	if err := os.MkdirAll(d.snapDir, 0o700); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: create %s: %w", d.path, d.snapDir, err)
	}
	now := time.Now().UTC()
	id := d.snapPrefix() + now.Format(snapTimeFormat)
	final := filepath.Join(d.snapDir, id)
	tmp := final + ".tmp"

	c, err := copyDatabase(ctx, d.path, tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s into %s: %w (check free space in %s)", d.path, tmp, err, d.snapDir)
	}
	if c.checked {
		err = syncFile(tmp)
	} else {
		c, err = checkCopy(ctx, tmp)
	}
	// The side file comes first: a crash before the rename leaves a side file
	// that names no snapshot, never a snapshot with a half-written checksum.
	if err == nil {
		err = writeSum(final, c.sum)
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(d.snapDir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		_ = os.Remove(sumPath(final))
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.path, err)
	}
	return migrator.Snapshot{ID: id, Time: now, Location: final, Version: c.version, Dirty: c.dirty}, nil
}

// copied describes a database copy: its checksum, and the migration version
// its check read.
type copied struct {
	sum     fileSum
	version uint
	dirty   bool
	checked bool // the copied bytes passed PRAGMA quick_check
}

// checkCopy checks the copy at path, syncs it and hashes it. The check is
// CPU, the sync is I/O, the checksum reads what the copy left in the page
// cache: they run side by side.
func checkCopy(ctx context.Context, path string) (copied, error) {
	synced := make(chan error, 1)
	go func() { synced <- syncFile(path) }()
	type summed struct {
		sum fileSum
		err error
	}
	sums := make(chan summed, 1)
	go func() {
		s, err := sumFile(path)
		sums <- summed{s, err}
	}()
	v, dirty, err := check(ctx, path)
	sum := <-sums
	err = errors.Join(err, <-synced, sum.err)
	return copied{sum: sum.sum, version: v, dirty: dirty, checked: err == nil}, err
}

// Snapshots lists the database's snapshots, newest first.
func (d *Database) Snapshots(ctx context.Context) ([]migrator.Snapshot, error) {
	entries, err := os.ReadDir(d.snapDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots of %s: %w", d.path, err)
	}
	var out []migrator.Snapshot
	for _, e := range entries {
		if t, ok := d.snapTime(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, migrator.Snapshot{ID: e.Name(), Time: t, Location: filepath.Join(d.snapDir, e.Name())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// snapTime parses the time out of a snapshot name of this database.
func (d *Database) snapTime(name string) (time.Time, bool) {
	stamp, ok := strings.CutPrefix(name, d.snapPrefix())
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(snapTimeFormat, stamp)
	return t, err == nil
}

// locate returns the path of snapshot id, refusing names that are not a
// snapshot of this database (another database's, or a path).
func (d *Database) locate(id string) (string, time.Time, error) {
	t, ok := d.snapTime(id)
	if !ok || strings.ContainsAny(id, `/\`) {
		return "", time.Time{}, fmt.Errorf("snapshot %q of %s: %w: snapshot ids of this database look like %s%s",
			id, d.path, migrator.ErrSnapshotNotFound, d.snapPrefix(), snapTimeFormat)
	}
	p := filepath.Join(d.snapDir, id)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", time.Time{}, fmt.Errorf("snapshot %s of %s: %w in %s", id, d.path, migrator.ErrSnapshotNotFound, d.snapDir)
	} else if err != nil {
		return "", time.Time{}, fmt.Errorf("snapshot %s of %s: %w", id, d.path, err)
	}
	return p, t, nil
}

// Inspect checks snapshot id and returns it with its version. A snapshot
// with a recorded checksum is checked against it (its bytes are those that
// were checked when it was taken); one without, by PRAGMA quick_check.
func (d *Database) Inspect(ctx context.Context, id string) (migrator.Snapshot, error) {
	p, t, err := d.locate(id)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	v, dirty, err := inspect(ctx, p)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w", id, d.path, err)
	}
	return migrator.Snapshot{ID: id, Time: t, Location: p, Version: v, Dirty: dirty}, nil
}

// inspect checks the snapshot at p and reads its version.
func inspect(ctx context.Context, p string) (uint, bool, error) {
	want, recorded, err := readSum(p)
	if err != nil {
		return 0, false, err
	}
	if !recorded {
		return check(ctx, p)
	}
	if err := checkSize(p, want); err != nil {
		return 0, false, err
	}
	got, err := sumFile(p)
	if err != nil {
		return 0, false, err
	}
	if err := verifySum(p, got, want); err != nil {
		return 0, false, err
	}
	return fileVersion(ctx, p)
}

// Restore replaces the database with snapshot id: a copy of the snapshot,
// verified against the checksum recorded when the snapshot was taken (or,
// for a snapshot without one, made once PRAGMA quick_check passed on it), is
// renamed over the file, after the replaced file was kept as a snapshot of
// its own (keepReplaced) and its -wal, -shm and -journal files removed (left
// in place, SQLite would apply the old WAL to the restored file). The
// restored file's version is read back. The service must not use the
// database during a restore.
func (d *Database) Restore(ctx context.Context, id string) (migrator.Snapshot, error) {
	tmp := d.path + restoreSuffix
	snap, err := d.stage(ctx, id, tmp)
	if err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, err
	}
	kept, linked := d.keepReplaced(ctx)
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(d.path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			_ = os.Remove(tmp)
			return migrator.Snapshot{}, fmt.Errorf("restore %s from snapshot %s: remove %s%s: %w", d.path, id, d.path, suffix, err)
		}
	}
	if err := os.Rename(tmp, d.path); err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("restore %s from snapshot %s: %w", d.path, id, err)
	}
	if linked {
		// The link is the replaced file itself, no longer the database:
		// make it a plain file, like every snapshot.
		if err := errors.Join(legacyHeaderFile(kept), syncFile(kept)); err != nil {
			_ = os.Remove(kept)
		}
	}
	if err := syncDir(filepath.Dir(d.path)); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s from snapshot %s: %w", d.path, id, err)
	}
	// The runs since the snapshot are undone: their records and marks go.
	forgotten, _ := runmarks.Forget(d.snapDir, d.snapPrefix(), snap.Time)
	for _, r := range forgotten {
		_ = os.Remove(filepath.Join(d.snapDir, r.Snapshot+markSuffix))
	}
	// The file is a synced byte copy of the snapshot checked above: reading
	// its version is enough; a second full check would double the restore.
	return apply.Restored(ctx, d.Version, d.path, id, snap)
}

// stage copies snapshot id into the new file tmp, synced and with the
// database's owner and mode, once the snapshot passed its check, and returns
// the snapshot with its version. The database is not touched.
func (d *Database) stage(ctx context.Context, id, tmp string) (migrator.Snapshot, error) {
	p, t, err := d.locate(id)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("refuse to restore: %w", err)
	}
	refuse := func(err error) (migrator.Snapshot, error) {
		return migrator.Snapshot{}, fmt.Errorf("refuse to restore %s from snapshot %s: %w; restore another snapshot (the database is unchanged)", d.path, id, err)
	}
	fail := func(err error) (migrator.Snapshot, error) {
		return migrator.Snapshot{}, fmt.Errorf("restore %s from snapshot %s: %w (the database is unchanged)", d.path, id, err)
	}
	want, recorded, err := readSum(p)
	if err != nil {
		return refuse(err)
	}
	snap := migrator.Snapshot{ID: id, Time: t, Location: p}
	if recorded {
		if err := checkSize(p, want); err != nil {
			return refuse(err)
		}
		// The copy is hashed on its way: bytes that match the checksum are
		// those checked when the snapshot was taken, which spares a second
		// full check.
		got, err := copyHashed(p, tmp, true, nil)
		if err != nil {
			return fail(err)
		}
		if err := verifySum(p, got, want); err != nil {
			return refuse(err)
		}
		if snap.Version, snap.Dirty, err = fileVersion(ctx, tmp); err != nil {
			return fail(err)
		}
	} else {
		// The check runs first, not beside the copy: measured at 1 GB, the
		// two reading one file at once took longer than one after the other.
		if snap.Version, snap.Dirty, err = check(ctx, p); err != nil {
			return refuse(err)
		}
		if _, err := copyHashed(p, tmp, true, nil); err != nil {
			return fail(err)
		}
	}
	if err := sameOwnerAndMode(d.path, tmp); err != nil {
		return fail(err)
	}
	return snap, nil
}

// KeepsReplaced reports that Restore keeps the database file it replaces as
// a snapshot of its own, so the migrator takes no copy of it beforehand.
func (d *Database) KeepsReplaced() bool { return true }

// keepReplaced keeps the database file that a restore is about to replace
// as a snapshot: a hard link in the snapshot directory (nothing is copied;
// the rename that replaces the file then unlinks nothing), once a checkpoint
// moved its WAL into it. When the WAL cannot be emptied or the link cannot
// be made, it copies the database (Snapshot) instead; when that fails too (a
// database too broken to copy) the restore goes on without keeping it.
// linked reports a link, whose header the caller fixes once it is no longer
// the database.
func (d *Database) keepReplaced(ctx context.Context) (path string, linked bool) {
	if fi, err := os.Stat(d.path + "-wal"); err == nil && fi.Size() > 0 {
		if !checkpointAll(ctx, d.path) {
			return d.copyReplaced(ctx), false
		}
	}
	if err := os.MkdirAll(d.snapDir, 0o700); err != nil {
		return "", false
	}
	kept := filepath.Join(d.snapDir, d.snapPrefix()+time.Now().UTC().Format(snapTimeFormat))
	if err := os.Link(d.path, kept); err != nil {
		return d.copyReplaced(ctx), false
	}
	return kept, true
}

// copyReplaced keeps the database by copying it, or returns "".
func (d *Database) copyReplaced(ctx context.Context) string {
	s, err := d.Snapshot(ctx)
	if err != nil {
		return ""
	}
	return s.Location
}

// checkpointAll moves every WAL frame of the database into its file and
// empties the WAL; it reports whether it could (no reader in the way).
func checkpointAll(ctx context.Context, path string) bool {
	db, err := conn(ctx, path)
	if err != nil {
		return false
	}
	defer db.Close()
	var busy, frames, moved int
	err = db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &moved)
	return err == nil && busy == 0 && frames == moved
}

// DropSnapshot deletes snapshot id.
func (d *Database) DropSnapshot(ctx context.Context, id string) error {
	p, _, err := d.locate(id)
	if err != nil {
		return err
	}
	// The checksum goes first: a snapshot left without one is checked with
	// PRAGMA quick_check, a checksum left without its snapshot is ignored.
	if err := os.Remove(sumPath(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.path, err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.path, err)
	}
	if err := os.Remove(p + markSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("drop the mark of snapshot %s of %s: %w", id, d.path, err)
	}
	return runmarks.Remove(d.snapDir, id)
}

// SweepLeftovers removes what a snapshot or restore of the database left
// when its process died midway: a snapshot's temporary copy, a checksum
// whose snapshot never got its name, a restore's temporary copy. The
// migrator runs it under the database's lock, after a migration.
func (d *Database) SweepLeftovers(ctx context.Context) ([]string, error) {
	var leftovers []string
	if _, err := os.Stat(d.path + restoreSuffix); err == nil {
		leftovers = append(leftovers, d.path+restoreSuffix)
	}
	entries, err := os.ReadDir(d.snapDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sweep leftovers of %s: %w", d.path, err)
	}
	for _, e := range entries {
		name := e.Name()
		if id, ok := strings.CutSuffix(strings.TrimSuffix(name, ".tmp"), markSuffix); ok {
			// A mark cut short, or one whose snapshot was dropped.
			if _, isSnap := d.snapTime(id); isSnap && (strings.HasSuffix(name, ".tmp") || !fileExists(filepath.Join(d.snapDir, id))) {
				leftovers = append(leftovers, filepath.Join(d.snapDir, name))
			}
		} else if id, ok := strings.CutSuffix(name, ".tmp"); ok {
			if _, isSnap := d.snapTime(id); isSnap {
				leftovers = append(leftovers, filepath.Join(d.snapDir, name))
			}
		} else if id, ok := strings.CutSuffix(name, sumSuffix); ok {
			if _, isSnap := d.snapTime(id); !isSnap {
				continue
			}
			if _, err := os.Stat(filepath.Join(d.snapDir, id)); errors.Is(err, fs.ErrNotExist) {
				leftovers = append(leftovers, filepath.Join(d.snapDir, name))
			}
		}
	}
	leftovers = append(leftovers, runmarks.Orphans(d.snapDir, d.snapPrefix(), func(id string) bool { return fileExists(filepath.Join(d.snapDir, id)) })...)
	var removed []string
	var errs []error
	for _, p := range leftovers {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("sweep leftovers of %s: %w", d.path, err)
	}
	return removed, nil
}

// check opens a database file read-only, runs PRAGMA quick_check (the
// integrity check without the index cross-check, linear in the file size) and
// reads its migration version.
func check(ctx context.Context, path string) (uint, bool, error) {
	// Mapping the file saves copying every page into SQLite's cache: the
	// check reads each page once.
	db, err := conn(ctx, path, "mode", "ro", "_pragma", "mmap_size(1099511627776)")
	if err != nil {
		return 0, false, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return 0, false, fmt.Errorf("check integrity of %s: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("check integrity of %s: %w", path, err)
		}
		if s != "ok" && len(problems) < 5 {
			problems = append(problems, s)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, false, fmt.Errorf("check integrity of %s: %w", path, err)
	}
	if len(problems) > 0 {
		return 0, false, fmt.Errorf("check integrity of %s: %s", path, strings.Join(problems, "; "))
	}
	v, dirty, err := readVersion(ctx, db)
	if err != nil {
		return 0, false, fmt.Errorf("read migration version of %s: %w", path, err)
	}
	return v, dirty, nil
}

// fileVersion opens a database file read-only and reads its migration
// version.
func fileVersion(ctx context.Context, path string) (uint, bool, error) {
	db, err := conn(ctx, path, "mode", "ro")
	if err != nil {
		return 0, false, err
	}
	defer db.Close()
	v, dirty, err := readVersion(ctx, db)
	if err != nil {
		return 0, false, fmt.Errorf("read migration version of %s: %w", path, err)
	}
	return v, dirty, nil
}

// copyDatabase copies the database at src into the new file dst: a file
// copy under the write lock, checked and hashed as it goes, when the file
// alone holds the database, else the online backup API, unchecked and
// unsynced (see Snapshot).
func copyDatabase(ctx context.Context, src, dst string) (copied, error) {
	db, err := conn(ctx, src)
	if err != nil {
		return copied{}, err
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		return copied{}, err
	}
	defer c.Close()
	cp, ok, err := copyLocked(ctx, c, src, dst)
	if err != nil || ok {
		return cp, err
	}
	return copied{}, backup(ctx, c, dst)
}

// copyLocked copies the file src to dst under the write lock, once no WAL
// frame is left outside the file, and checks the database meanwhile. It
// returns false, and no error, when some frames could not be moved into the
// file (a reader still needs the older pages): the caller then uses the
// backup API. The copy is not synced.
func copyLocked(ctx context.Context, c *sql.Conn, src, dst string) (copied, bool, error) {
	var mode string
	if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return copied{}, false, fmt.Errorf("read journal mode: %w", err)
	}
	wal := strings.EqualFold(mode, "wal")
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return copied{}, false, fmt.Errorf("lock for the copy: %w", err)
	}
	defer func() { _, _ = c.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`) }()
	// A read makes SQLite roll back a hot journal left by a crash first.
	var n int
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master`).Scan(&n); err != nil {
		return copied{}, false, fmt.Errorf("read schema: %w", err)
	}
	if wal {
		// No commit can come while we hold the write lock: a checkpoint that
		// moves every frame of the WAL into the file makes the file whole.
		// A checkpoint needs a connection outside any transaction; PASSIVE
		// never waits, for readers or anyone.
		cp, err := conn(ctx, src)
		if err != nil {
			return copied{}, false, err
		}
		var busy, frames, moved int
		err = cp.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &moved)
		_ = cp.Close()
		if err != nil || busy != 0 || frames != moved {
			return copied{}, false, nil
		}
	}
	// Nothing changes the database before ROLLBACK: the check reads the
	// state that is being copied. It is CPU, the copy mostly memory and I/O.
	checkCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   copied
		err error
	}
	checked := make(chan result, 1)
	go func() {
		v, dirty, err := check(checkCtx, src)
		checked <- result{copied{version: v, dirty: dirty, checked: true}, err}
	}()
	var patch func(int64, []byte)
	if wal {
		// The copy says WAL in its header; make it a plain file, so that
		// checking or restoring it leaves no -wal or -shm behind.
		patch = legacyHeader
	}
	sum, err := copyHashed(src, dst, false, patch)
	if err != nil {
		cancel()
	}
	r := <-checked
	if err := errors.Join(err, r.err); err != nil {
		return copied{}, false, err
	}
	r.c.sum = sum
	return r.c, true, nil
}

// headerFormat is the offset in a database file's header of the file format
// bytes (18 and 19): 2 for WAL, 1 for a rollback journal.
const headerFormat = 18

// legacyHeader sets, in the chunk b of a database file read at offset off,
// the file format bytes to 1 (rollback journal), which is what PRAGMA
// journal_mode=DELETE writes when it leaves WAL mode.
func legacyHeader(off int64, b []byte) {
	for i := int64(headerFormat); i < headerFormat+2; i++ {
		if i >= off && i < off+int64(len(b)) {
			b[i-off] = 1
		}
	}
}

// legacyHeaderFile sets the file format bytes of the database file at path
// to 1 (see legacyHeader).
func legacyHeaderFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte{1, 1}, headerFormat)
	return errors.Join(err, f.Close())
}

// backup copies the database of c into the new file dst through the online
// backup API, in one step (one read transaction): steps of a few pages would
// let a writer restart the backup again and again.
func backup(ctx context.Context, c *sql.Conn, dst string) error {
	// The copy is synced once, by the caller; a journal of its own would
	// only double the writes of a file nobody else opens yet.
	dstURI := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dst),
		RawQuery: url.Values{"_pragma": {"journal_mode(OFF)", "synchronous(OFF)"}}.Encode()}).String()
	return c.Raw(func(dc any) error {
		b, ok := dc.(backuper)
		if !ok {
			return errors.New("the sqlite driver offers no online backup")
		}
		bk, err := b.NewBackup(dstURI)
		if err != nil {
			return fmt.Errorf("start backup: %w", err)
		}
		if _, err := bk.Step(-1); err != nil {
			return errors.Join(err, bk.Finish())
		}
		cp, err := bk.Commit()
		if err != nil {
			return err
		}
		if ex, ok := cp.(driver.ExecerContext); ok {
			_, err = ex.ExecContext(ctx, `PRAGMA journal_mode=DELETE`, nil)
		} else {
			err = errors.New("set the copy's journal mode: its connection cannot run statements")
		}
		return errors.Join(err, cp.Close())
	})
}

// backuper is the online backup of modernc.org/sqlite's connections.
type backuper interface {
	NewBackup(dstURI string) (*msqlite.Backup, error)
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// WrittenAfter counts the writes to each table after snapshot id (see
// migrator.Loss) by comparing, ATTACHed read only, the snapshot with the
// database: in a rowid table, a rowid only in the newer is an insert, only
// in the older a delete, in both with other values (in the columns both
// have) an update; in a WITHOUT ROWID table, rows are compared whole, so an
// update counts as a delete and an insert. A table only in the newer counts
// its rows as inserts, a table only in the older as deletes.
//
// The migrator's runs after the snapshot are left out: for each one with a
// mark (MarkRun's copy), the comparison stops at the run's start (its
// snapshot) and starts again from its mark. It reads every row of each file
// compared (a few hundred ms per million rows, per comparison).
func (d *Database) WrittenAfter(ctx context.Context, id string) (migrator.Loss, error) {
	p, t, err := d.locate(id)
	if err != nil {
		return migrator.Loss{}, err
	}
	fail := func(err error) (migrator.Loss, error) {
		return migrator.Loss{}, fmt.Errorf("count writes to %s after snapshot %s: %w", d.path, id, err)
	}
	runs, err := runmarks.Since(d.snapDir, d.snapPrefix(), t)
	if err != nil {
		return fail(err)
	}
	var loss migrator.Loss
	prev := p
	for _, mk := range runs {
		start, _, serr := d.locate(mk.Snapshot)
		end := filepath.Join(d.snapDir, mk.Snapshot+markSuffix)
		if !mk.Marked() || serr != nil || mk.End != mk.Snapshot+markSuffix || !fileExists(end) {
			// No mark, or its copy is gone: the comparison goes on
			// through the run, its own writes included.
			loss.OwnIncluded = true
			continue
		}
		if start != prev {
			seg, err := compareFiles(ctx, start, prev)
			if err != nil {
				return fail(err)
			}
			loss = loss.Plus(seg)
		}
		prev = end
	}
	db, err := conn(ctx, d.path)
	if err != nil {
		return migrator.Loss{}, err
	}
	defer db.Close()
	last, err := attachAndCount(ctx, db, prev)
	if err != nil {
		return fail(err)
	}
	total := loss.Plus(last)
	total.Counted, total.Uncounted = last.Counted, last.Uncounted
	return total, nil
}

// compareFiles counts the writes from the database file older to the
// database file newer (see WrittenAfter).
func compareFiles(ctx context.Context, newer, older string) (migrator.Loss, error) {
	db, err := conn(ctx, newer, "mode", "ro")
	if err != nil {
		return migrator.Loss{}, err
	}
	defer db.Close()
	return attachAndCount(ctx, db, older)
}

// attachAndCount attaches the database file older, read only, as snap to
// db and counts the writes from it to db's main database.
func attachAndCount(ctx context.Context, db *sql.DB, older string) (migrator.Loss, error) {
	uri := (&url.URL{Scheme: "file", Path: filepath.ToSlash(older), RawQuery: "mode=ro"}).String()
	if _, err := db.ExecContext(ctx, `ATTACH DATABASE ? AS snap`, uri); err != nil {
		return migrator.Loss{}, fmt.Errorf("attach %s: %w", older, err)
	}
	return countAfter(ctx, db)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// countAfter compares, on a connection with the snapshot attached as snap,
// every table of main and snap (see WrittenAfter).
func countAfter(ctx context.Context, db *sql.DB) (migrator.Loss, error) {
	list := func(schema string) (map[string]string, error) {
		rows, err := db.QueryContext(ctx, `SELECT name, coalesce(sql, '') FROM `+schema+`.sqlite_master
			WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT IN (?, ?, ?)`,
			migratesqlite.DefaultMigrationsTable, ledger.Table, ledger.RunsTable)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var name, ddl string
			if err := rows.Scan(&name, &ddl); err != nil {
				return nil, err
			}
			out[name] = ddl
		}
		return out, rows.Err()
	}
	mainTables, err := list("main")
	if err != nil {
		return migrator.Loss{}, err
	}
	snapTables, err := list("snap")
	if err != nil {
		return migrator.Loss{}, err
	}
	columns := func(schema, table string) ([]string, error) {
		return sqlrows.Strings(ctx, db, `SELECT name FROM pragma_table_info(?, ?) ORDER BY cid`, table, schema)
	}
	count := func(q string) (int64, error) {
		var n int64
		err := db.QueryRowContext(ctx, q).Scan(&n)
		return n, err
	}
	var loss migrator.Loss
	for _, name := range slices.Sorted(maps.Keys(mergeKeys(mainTables, snapTables))) {
		q := quoteIdent(name)
		w := migrator.TableWrites{Table: name}
		mainDDL, inMain := mainTables[name]
		snapDDL, inSnap := snapTables[name]
		var err error
		switch {
		case !inSnap:
			w.Inserts, err = count(`SELECT COUNT(*) FROM main.` + q)
		case !inMain:
			w.Deletes, err = count(`SELECT COUNT(*) FROM snap.` + q)
		default:
			var mc, sc []string
			if mc, err = columns("main", name); err != nil {
				break
			}
			if sc, err = columns("snap", name); err != nil {
				break
			}
			var common []string
			for _, c := range mc {
				if slices.Contains(sc, c) {
					common = append(common, quoteIdent(c))
				}
			}
			cols := strings.Join(common, ", ")
			if withoutRowid(mainDDL) || withoutRowid(snapDDL) {
				if w.Inserts, err = count(`SELECT COUNT(*) FROM (SELECT ` + cols + ` FROM main.` + q + ` EXCEPT SELECT ` + cols + ` FROM snap.` + q + `)`); err != nil {
					break
				}
				w.Deletes, err = count(`SELECT COUNT(*) FROM (SELECT ` + cols + ` FROM snap.` + q + ` EXCEPT SELECT ` + cols + ` FROM main.` + q + `)`)
				break
			}
			if w.Inserts, err = count(`SELECT COUNT(*) FROM main.` + q + ` m WHERE NOT EXISTS (SELECT 1 FROM snap.` + q + ` s WHERE s.rowid = m.rowid)`); err != nil {
				break
			}
			if w.Deletes, err = count(`SELECT COUNT(*) FROM snap.` + q + ` s WHERE NOT EXISTS (SELECT 1 FROM main.` + q + ` m WHERE m.rowid = s.rowid)`); err != nil {
				break
			}
			var differ []string
			for _, c := range common {
				differ = append(differ, "m."+c+" IS NOT s."+c)
			}
			if len(differ) > 0 {
				w.Updates, err = count(`SELECT COUNT(*) FROM main.` + q + ` m JOIN snap.` + q + ` s ON s.rowid = m.rowid WHERE ` + strings.Join(differ, " OR "))
			}
		}
		if err != nil {
			return migrator.Loss{}, fmt.Errorf("table %s: %w", name, err)
		}
		loss.Counted = append(loss.Counted, name)
		if total := w.Inserts + w.Updates + w.Deletes; total > 0 {
			loss.Tables = append(loss.Tables, w)
			loss.Rows += total
		}
	}
	return loss, nil
}

func mergeKeys(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// withoutRowid reports whether a CREATE TABLE statement makes a WITHOUT
// ROWID table.
func withoutRowid(ddl string) bool {
	options := ddl[strings.LastIndex(ddl, ")")+1:] // after the column list
	return strings.Contains(strings.ToUpper(options), "ROWID")
}

// quoteIdent quotes an SQLite identifier.
func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }
