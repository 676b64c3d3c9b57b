package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/sqlite"
)

const rows = 3000

// seed creates a database at version 1 of testdata/ok with rows users.
func seed(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // an empty file is an empty SQLite database
		t.Fatal(err)
	}
	db := open(t, path, "../testdata/ok")
	if err := db.Up(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	sdb := sqlDB(t, path)
	tx, err := sdb.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if _, err := tx.Exec(`INSERT INTO users (name) VALUES (?)`, "user"+string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t *testing.T, path, source string) migrator.Database {
	t.Helper()
	db, err := sqlite.Driver{}.Open(t.Context(), path, source)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func sqlDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func count(t *testing.T, path, table string) int {
	t.Helper()
	db := sqlDB(t, path)
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatalf("count %s in %s: %v", table, path, err)
	}
	return n
}

func version(t *testing.T, db migrator.Database) (uint, bool) {
	t.Helper()
	v, dirty, err := db.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return v, dirty
}

func TestOpenRefusesMissingDatabase(t *testing.T) {
	_, err := sqlite.Driver{}.Open(t.Context(), filepath.Join(t.TempDir(), "nope.db"), "../testdata/ok")
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open(missing file) err = %v, want 'does not exist'", err)
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "nope.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open created the missing database")
	}
}

func TestMigrations(t *testing.T) {
	db := open(t, seed(t), "../testdata/nodown")
	migs, err := db.Migrations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []migrator.Migration{
		{Version: 1, Name: "users", Up: "0001_users.up.sql", Down: "0001_users.down.sql"},
		{Version: 2, Name: "users_email", Up: "0002_users_email.up.sql", Down: "0002_users_email.down.sql"},
		{Version: 3, Name: "orders", Up: "0003_orders.up.sql"},
	}
	if len(migs) != len(want) {
		t.Fatalf("Migrations() = %+v, want %+v", migs, want)
	}
	for i := range want {
		want[i].SHA256 = migs[i].SHA256 // checked in the migrator package
		if migs[i] != want[i] || len(migs[i].SHA256) != 64 {
			t.Errorf("migration %d = %+v, want %+v", i, migs[i], want[i])
		}
	}

	dup := t.TempDir()
	for _, f := range []string{"0001_a.up.sql", "0001_b.up.sql"} {
		if err := os.WriteFile(filepath.Join(dup, f), []byte("SELECT 1;"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := open(t, seed(t), dup).Migrations(t.Context()); err == nil || !strings.Contains(err.Error(), "both up migrations of version 1") {
		t.Errorf("Migrations() with two up files for version 1: err = %v", err)
	}
}

func TestUpDownAndFailingStep(t *testing.T) {
	path := seed(t)
	db := open(t, path, "../testdata/ok")
	if err := db.Up(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	if v, dirty := version(t, db); v != 4 || dirty {
		t.Fatalf("after Up(4): version %d dirty %v", v, dirty)
	}
	if err := db.Down(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if v, dirty := version(t, db); v != 1 || dirty {
		t.Fatalf("after Down(1): version %d dirty %v", v, dirty)
	}
	if n := count(t, path, "users"); n != rows {
		t.Fatalf("users after up and down: %d, want %d", n, rows)
	}

	failing := open(t, path, "../testdata/failing")
	err := failing.Up(t.Context(), 4)
	var step *migrator.StepError
	if !errors.As(err, &step) || step.File != "0003_broken.up.sql" || step.Version != 3 || !strings.Contains(step.Err.Error(), "no such table: missing_table") {
		t.Fatalf("Up through a broken migration: err = %#v, want a StepError on 0003_broken.up.sql", err)
	}
	if strings.Contains(step.Err.Error(), "CREATE TABLE") {
		t.Errorf("step error %q carries the migration text; want the database's error only", step.Err)
	}
	if v, dirty := version(t, failing); v != 3 || !dirty {
		t.Fatalf("after the failed step: version %d dirty %v, want dirty at 3 (golang-migrate's record)", v, dirty)
	}
}

func TestSnapshotAndRestore(t *testing.T) {
	path := seed(t)
	db := open(t, path, "../testdata/ok")
	snap, err := db.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(path), sqlite.SnapshotDir)
	if snap.Version != 1 || snap.Dirty || snap.Location != filepath.Join(dir, snap.ID) || !strings.HasPrefix(snap.ID, "app.db.snap-") {
		t.Fatalf("Snapshot() = %+v", snap)
	}
	if n := count(t, snap.Location, "users"); n != rows {
		t.Fatalf("snapshot holds %d users, want %d", n, rows)
	}

	// Change the database: the restore must undo all of it.
	if err := db.Up(t.Context(), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlDB(t, path).Exec(`INSERT INTO orders (user_id, total) VALUES (1, 10)`); err != nil {
		t.Fatal(err)
	}
	got, err := db.Restore(t.Context(), snap.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != snap.ID || got.Version != 1 {
		t.Errorf("Restore() = %+v, want snapshot %s at version 1", got, snap.ID)
	}
	if v, dirty := version(t, db); v != 1 || dirty {
		t.Fatalf("after restore: version %d dirty %v, want clean 1", v, dirty)
	}
	if n := count(t, path, "users"); n != rows {
		t.Fatalf("users after restore: %d, want %d", n, rows)
	}
	for _, suffix := range []string{"-wal", "-shm", "-journal", ".cutover-restore"} {
		if _, err := os.Stat(path + suffix); err == nil {
			t.Errorf("%s%s left after restore", path, suffix)
		}
	}
	// The replaced state is kept as a snapshot of its own, newest.
	list, err := db.Snapshots(t.Context())
	if err != nil || len(list) != 2 || list[1].ID != snap.ID || !list[1].Time.Equal(snap.Time) {
		t.Fatalf("Snapshots() = %+v, %v; want the replaced state, then %s", list, err, snap.ID)
	}
	kept, err := db.Inspect(t.Context(), list[0].ID)
	if err != nil || kept.Version != 4 || kept.Dirty || count(t, kept.Location, "orders") != 1 {
		t.Errorf("kept replaced state = %+v, %v; want clean version 4 with its order", kept, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("snapshot dir holds %v, want only the two snapshots (no temp or side files)", entries)
	}
	for _, id := range []string{"app.db.snap-20000101T000000.000000000Z", "../app.db", "other.db.snap-20250101T000000.000000000Z"} {
		if _, err := db.Restore(t.Context(), id); !errors.Is(err, migrator.ErrSnapshotNotFound) {
			t.Errorf("Restore(%q) err = %v, want ErrSnapshotNotFound", id, err)
		}
	}
}

func TestSnapshotRefusesCorruptCopy(t *testing.T) {
	path := seed(t)
	db := open(t, path, "")
	snap, err := db.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Damage the snapshot's pages past the header: Inspect and Restore must refuse it.
	f, err := os.OpenFile(snap.Location, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, fi.Size()-4096)
	for i := range junk {
		junk[i] = 0xA5
	}
	if _, err := f.WriteAt(junk, 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := db.Restore(t.Context(), snap.ID); err == nil {
		t.Fatal("Restore of a corrupt snapshot succeeded")
	}
	if n := count(t, path, "users"); n != rows {
		t.Fatalf("users after a refused restore: %d, want %d (database untouched)", n, rows)
	}
}

// A service keeps its database open in WAL mode, with writes not yet
// checkpointed into the main file: the snapshot must hold them, and a
// restore must not replay the old WAL onto the restored file.
func TestSnapshotOfLiveWALDatabase(t *testing.T) {
	path := seed(t)
	app := sqlDB(t, path)
	app.SetMaxOpenConns(1)
	if _, err := app.Exec(`PRAGMA journal_mode = WAL`); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Exec(`INSERT INTO users (name) VALUES ('in-the-wal')`); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("want a non-empty WAL while the service runs: %v", err)
	}

	db := open(t, path, "../testdata/ok")
	snap, err := db.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, snap.Location, "users"); n != rows+1 {
		t.Fatalf("snapshot holds %d users, want %d (the WAL's row included)", n, rows+1)
	}
	if _, err := app.Exec(`INSERT INTO users (name) VALUES ('after-snapshot')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Up(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	app.Close() // the service stops before a restore

	if _, err := db.Restore(t.Context(), snap.ID); err != nil {
		t.Fatal(err)
	}
	if v, dirty := version(t, db); v != 1 || dirty {
		t.Fatalf("after restore: version %d dirty %v, want clean 1", v, dirty)
	}
	if n := count(t, path, "users"); n != rows+1 {
		t.Fatalf("users after restore: %d, want %d", n, rows+1)
	}
	// The snapshot, and the replaced state (its WAL checkpointed into it).
	entries, _ := os.ReadDir(filepath.Dir(snap.Location))
	if len(entries) != 2 {
		t.Errorf("snapshot dir holds %d entries, want the two snapshots only (no -wal/-shm from checking them)", len(entries))
	}
	list, err := db.Snapshots(t.Context())
	if err != nil || len(list) != 2 {
		t.Fatalf("Snapshots() = %+v, %v", list, err)
	}
	if n := count(t, list[0].Location, "users"); n != rows+2 {
		t.Errorf("kept replaced state holds %d users, want %d (its WAL's rows included)", n, rows+2)
	}
	if entries, _ := os.ReadDir(filepath.Dir(snap.Location)); len(entries) != 2 {
		t.Errorf("snapshot dir holds %d entries after reading the kept state, want 2 (a plain file, not WAL)", len(entries))
	}
}

// A reader that started before the WAL's last commits keeps the checkpoint
// from moving them into the file: the snapshot then goes through the backup
// API, and still holds those commits; the reader and the writer keep going.
func TestSnapshotWhileAReaderHoldsTheWAL(t *testing.T) {
	path := seed(t)
	app := sqlDB(t, path)
	app.SetMaxOpenConns(1)
	for _, q := range []string{`PRAGMA journal_mode = WAL`, `PRAGMA wal_autocheckpoint = 0`, `INSERT INTO users (name) VALUES ('before-reader')`} {
		if _, err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	reader := sqlDB(t, path)
	rtx, err := reader.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var seen int
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&seen); err != nil || seen != rows+1 {
		t.Fatalf("reader sees %d users (%v), want %d", seen, err, rows+1)
	}
	if _, err := app.Exec(`INSERT INTO users (name) VALUES ('after-reader')`); err != nil {
		t.Fatal(err)
	}

	db := open(t, path, "../testdata/ok")
	snap, err := db.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, snap.Location, "users"); n != rows+2 {
		t.Errorf("snapshot holds %d users, want %d (both WAL commits)", n, rows+2)
	}
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&seen); err != nil || seen != rows+1 {
		t.Errorf("reader sees %d users (%v) after the snapshot, want its own %d", seen, err, rows+1)
	}
	if _, err := app.Exec(`INSERT INTO users (name) VALUES ('after-snapshot')`); err != nil {
		t.Errorf("write after the snapshot: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(snap.Location)); len(entries) != 1 {
		t.Errorf("snapshot dir holds %d entries, want only the snapshot", len(entries))
	}
}
