package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
)

// snapTimeFormat orders snapshot names by time and keeps them unique.
const snapTimeFormat = "20060102T150405.000000000Z"

func (d *Database) snapPrefix() string { return filepath.Base(d.path) + ".snap-" }

// Snapshot copies the database with VACUUM INTO, checks the copy, and moves
// it into place under its final name.
func (d *Database) Snapshot(ctx context.Context) (migrator.Snapshot, error) {
	if err := os.MkdirAll(d.snapDir, 0o700); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: create %s: %w", d.path, d.snapDir, err)
	}
	now := time.Now().UTC()
	id := d.snapPrefix() + now.Format(snapTimeFormat)
	final := filepath.Join(d.snapDir, id)
	tmp := final + ".tmp"

	db, err := conn(ctx, d.path)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmp)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s into %s: %w (check free space in %s)", d.path, tmp, err, d.snapDir)
	}
	v, dirty, err := check(ctx, tmp)
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
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.path, err)
	}
	return migrator.Snapshot{ID: id, Time: now, Location: final, Version: v, Dirty: dirty}, nil
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

// Inspect checks snapshot id and returns it with its version.
func (d *Database) Inspect(ctx context.Context, id string) (migrator.Snapshot, error) {
	p, t, err := d.locate(id)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	v, dirty, err := check(ctx, p)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s of %s: %w", id, d.path, err)
	}
	return migrator.Snapshot{ID: id, Time: t, Location: p, Version: v, Dirty: dirty}, nil
}

// Restore replaces the database with snapshot id: a checked copy of the
// snapshot is renamed over the file, after the -wal, -shm and -journal files
// of the replaced state are removed (left in place, SQLite would apply the
// old WAL to the restored file). The restored file's version is read back.
func (d *Database) Restore(ctx context.Context, id string) (migrator.Snapshot, error) {
	snap, err := d.Inspect(ctx, id)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("refuse to restore: %w", err)
	}
	tmp := d.path + ".cutover-restore"
	err = copyFile(snap.Location, tmp)
	if err == nil {
		err = sameOwnerAndMode(d.path, tmp)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return migrator.Snapshot{}, fmt.Errorf("restore %s from snapshot %s: %w (the database is unchanged)", d.path, id, err)
	}
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
	if err := syncDir(filepath.Dir(d.path)); err != nil {
		return migrator.Snapshot{}, fmt.Errorf("restore %s from snapshot %s: %w", d.path, id, err)
	}
	// The file is a synced byte copy of the snapshot checked above: reading
	// its version is enough; a second full check would double the restore.
	v, dirty, err := d.Version(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("check %s restored from snapshot %s: %w", d.path, id, err)
	}
	if v != snap.Version || dirty != snap.Dirty {
		return migrator.Snapshot{}, fmt.Errorf("check %s restored from snapshot %s: version %d (dirty %v), want the snapshot's %d (dirty %v)",
			d.path, id, v, dirty, snap.Version, snap.Dirty)
	}
	return snap, nil
}

// DropSnapshot deletes snapshot id.
func (d *Database) DropSnapshot(ctx context.Context, id string) error {
	p, _, err := d.locate(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("drop snapshot %s of %s: %w", id, d.path, err)
	}
	return nil
}

// check opens a database file read-only, runs PRAGMA quick_check (the
// integrity check without the index cross-check, linear in the file size) and
// reads its migration version.
func check(ctx context.Context, path string) (uint, bool, error) {
	db, err := conn(ctx, path, "mode", "ro")
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

// copyFile copies src to a new file dst and syncs it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
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
