package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
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
	dbtest.Up(t, db, 1)
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
	return dbtest.Open(t, sqlite.Driver{}, path, source)
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

var version = dbtest.Version

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
	dbtest.Up(t, db, 4)
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
	snap := dbtest.Snapshot(t, db)
	dir := filepath.Join(filepath.Dir(path), sqlite.SnapshotDir)
	if snap.Version != 1 || snap.Dirty || snap.Location != filepath.Join(dir, snap.ID) || !strings.HasPrefix(snap.ID, "app.db.snap-") {
		t.Fatalf("Snapshot() = %+v", snap)
	}
	if n := count(t, snap.Location, "users"); n != rows {
		t.Fatalf("snapshot holds %d users, want %d", n, rows)
	}

	// Change the database: the restore must undo all of it.
	dbtest.Up(t, db, 4)
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
	// The kept state is a hard link: nobody read it to record a checksum.
	if got, want := dirNames(t, dir), []string{snap.ID, snap.ID + ".crc32c", list[0].ID}; !slices.Equal(got, want) {
		t.Errorf("snapshot dir holds %v, want %v (the snapshots and the first one's checksum; no temp files)", got, want)
	}
	for _, id := range []string{"app.db.snap-20000101T000000.000000000Z", "../app.db", "other.db.snap-20250101T000000.000000000Z", snap.ID + ".crc32c"} {
		if _, err := db.Restore(t.Context(), id); !errors.Is(err, migrator.ErrSnapshotNotFound) {
			t.Errorf("Restore(%q) err = %v, want ErrSnapshotNotFound", id, err)
		}
	}
	if err := db.DropSnapshot(t.Context(), snap.ID); err != nil {
		t.Fatal(err)
	}
	if got, want := dirNames(t, dir), []string{list[0].ID}; !slices.Equal(got, want) {
		t.Errorf("after DropSnapshot(%s) the snapshot dir holds %v, want %v (its checksum dropped too)", snap.ID, got, want)
	}
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// A snapshot's bytes are checked against the checksum recorded when it was
// taken; a snapshot without one (taken before checksums) with PRAGMA
// quick_check. A restore refused leaves the database as it was.
func TestRestoreChecksTheSnapshot(t *testing.T) {
	cases := []struct {
		name string
		// damage changes the snapshot at path after it was taken; it returns
		// what the refusal must say, or nothing for a restore that succeeds.
		damage func(t *testing.T, path string) []string
	}{
		{"intact", func(t *testing.T, path string) []string { return nil }},
		{"one byte of a row changed", func(t *testing.T, path string) []string {
			want := recordedSum(t, path)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// A byte of a name, not of the b-tree: PRAGMA quick_check
			// cannot see this one.
			i := len(b)/2 + bytes.Index(b[len(b)/2:], []byte("user"))
			b[i] ^= 0x20 // user -> User
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%08x", crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
			return []string{"snapshot " + path + " changed since it was taken", "CRC32C " + got, "CRC32C " + want, "restore another snapshot", "the database is unchanged"}
		}},
		{"truncated", func(t *testing.T, path string) []string {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()-4096); err != nil {
				t.Fatal(err)
			}
			return []string{"snapshot " + path + " changed since it was taken: it holds " + strconv.FormatInt(fi.Size()-4096, 10) + " bytes"}
		}},
		{"checksum file damaged", func(t *testing.T, path string) []string {
			if err := os.WriteFile(path+".crc32c", []byte("crc32c zz\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"checksum file " + path + ".crc32c is damaged", "remove it to check the snapshot with PRAGMA quick_check instead"}
		}},
		{"no checksum (an older snapshot)", func(t *testing.T, path string) []string {
			if err := os.Remove(path + ".crc32c"); err != nil {
				t.Fatalf("the snapshot has no checksum file: %v", err)
			}
			return nil
		}},
		{"no checksum, pages overwritten", func(t *testing.T, path string) []string {
			if err := os.Remove(path + ".crc32c"); err != nil {
				t.Fatalf("the snapshot has no checksum file: %v", err)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(fi.Size())-4096), 4096); err != nil {
				t.Fatal(err)
			}
			return []string{"refuse to restore", "check integrity of " + path}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := seed(t)
			db := open(t, path, "../testdata/ok")
			snap := dbtest.Snapshot(t, db)
			dbtest.Up(t, db, 4)
			if _, err := sqlDB(t, path).Exec(`INSERT INTO orders (user_id, total) VALUES (1, 10)`); err != nil {
				t.Fatal(err)
			}
			want := c.damage(t, snap.Location)

			inspected, ierr := db.Inspect(t.Context(), snap.ID)
			restored, err := db.Restore(t.Context(), snap.ID)
			if want == nil {
				if ierr != nil || inspected.Version != 1 {
					t.Errorf("Inspect() = %+v, %v; want version 1", inspected, ierr)
				}
				if err != nil || restored.Version != 1 || restored.Dirty {
					t.Fatalf("Restore() = %+v, %v; want clean version 1", restored, err)
				}
				if v, dirty := version(t, db); v != 1 || dirty || count(t, path, "users") != rows {
					t.Errorf("after restore: version %d dirty %v, want clean 1 with %d users", v, dirty, rows)
				}
				return
			}
			if ierr == nil {
				t.Errorf("Inspect() of the damaged snapshot = %+v, want an error", inspected)
			}
			if err == nil {
				t.Fatalf("Restore() of the damaged snapshot = %+v, want it refused", restored)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Restore() err = %q, want it to say %q", err, w)
				}
			}
			if v, dirty := version(t, db); v != 4 || dirty || count(t, path, "orders") != 1 {
				t.Errorf("after a refused restore: version %d dirty %v, want the database unchanged (clean 4 with its order)", v, dirty)
			}
			if _, err := os.Stat(path + ".cutover-restore"); err == nil {
				t.Errorf("%s.cutover-restore left after a refused restore", path)
			}
			if list, err := db.Snapshots(t.Context()); err != nil || len(list) != 1 {
				t.Errorf("Snapshots() = %+v, %v; want the damaged one only (a refused restore keeps nothing)", list, err)
			}
		})
	}
}

// recordedSum returns the CRC32C, in hex, recorded for the snapshot at path.
func recordedSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path + ".crc32c")
	if err != nil {
		t.Fatalf("the snapshot has no checksum file: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != "crc32c" {
		t.Fatalf("%s.crc32c holds %q, want \"crc32c <hex> <size>\"", path, b)
	}
	return f[1]
}

func TestSnapshotRefusesCorruptCopy(t *testing.T) {
	path := seed(t)
	db := open(t, path, "")
	snap := dbtest.Snapshot(t, db)
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
	snap := dbtest.Snapshot(t, db)
	if n := count(t, snap.Location, "users"); n != rows+1 {
		t.Fatalf("snapshot holds %d users, want %d (the WAL's row included)", n, rows+1)
	}
	if _, err := app.Exec(`INSERT INTO users (name) VALUES ('after-snapshot')`); err != nil {
		t.Fatal(err)
	}
	dbtest.Up(t, db, 2)
	app.Close() // the service stops before a restore

	dbtest.Restore(t, db, snap.ID)
	if v, dirty := version(t, db); v != 1 || dirty {
		t.Fatalf("after restore: version %d dirty %v, want clean 1", v, dirty)
	}
	if n := count(t, path, "users"); n != rows+1 {
		t.Fatalf("users after restore: %d, want %d", n, rows+1)
	}
	// The snapshot, and the replaced state (its WAL checkpointed into it).
	list, err := db.Snapshots(t.Context())
	if err != nil || len(list) != 2 {
		t.Fatalf("Snapshots() = %+v, %v", list, err)
	}
	dir := filepath.Dir(snap.Location)
	want := []string{snap.ID, snap.ID + ".crc32c", list[0].ID}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("snapshot dir holds %v, want %v (no -wal/-shm from checking them)", got, want)
	}
	if n := count(t, list[0].Location, "users"); n != rows+2 {
		t.Errorf("kept replaced state holds %d users, want %d (its WAL's rows included)", n, rows+2)
	}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("snapshot dir holds %v after reading the kept state, want %v (a plain file, not WAL)", got, want)
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
	snap := dbtest.Snapshot(t, db)
	if n := count(t, snap.Location, "users"); n != rows+2 {
		t.Errorf("snapshot holds %d users, want %d (both WAL commits)", n, rows+2)
	}
	if err := rtx.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&seen); err != nil || seen != rows+1 {
		t.Errorf("reader sees %d users (%v) after the snapshot, want its own %d", seen, err, rows+1)
	}
	if _, err := app.Exec(`INSERT INTO users (name) VALUES ('after-snapshot')`); err != nil {
		t.Errorf("write after the snapshot: %v", err)
	}
	if got, want := dirNames(t, filepath.Dir(snap.Location)), []string{snap.ID, snap.ID + ".crc32c"}; !slices.Equal(got, want) {
		t.Errorf("snapshot dir holds %v, want %v (the snapshot and its checksum)", got, want)
	}
	// The backup API wrote the copy: its checksum must match it all the same.
	if _, err := db.Inspect(t.Context(), snap.ID); err != nil {
		t.Errorf("Inspect() of a snapshot taken through the backup API: %v", err)
	}
}

// A database with a damaged page is not snapshotted: the check that runs
// during the copy refuses it, names the problem, and leaves neither a
// snapshot nor a checksum behind. The database file is left as it was.
func TestSnapshotRefusesDamagedDatabase(t *testing.T) {
	for _, mode := range []string{"DELETE", "WAL"} {
		t.Run(mode, func(t *testing.T) {
			path := seed(t)
			app := sqlDB(t, path)
			if _, err := app.Exec(`PRAGMA journal_mode = ` + mode); err != nil {
				t.Fatal(err)
			}
			app.Close()
			// Overwrite a page in the middle of the users table with junk.
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := f.Stat()
			pages := fi.Size() / 4096
			if pages < 4 {
				t.Fatalf("seeded database has %d pages, want a few more to damage one", pages)
			}
			if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 4096), pages/2*4096); err != nil {
				t.Fatal(err)
			}
			f.Close()
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			db := open(t, path, "")
			_, err = db.Snapshot(t.Context())
			if err == nil || !strings.Contains(err.Error(), "check integrity of "+path) {
				t.Fatalf("Snapshot of a damaged database: %v, want an error naming the integrity check of %s", err, path)
			}
			if got := dirNames(t, filepath.Join(filepath.Dir(path), sqlite.SnapshotDir)); len(got) != 0 {
				t.Errorf("snapshot dir holds %v after a refused snapshot, want nothing", got)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the database file changed during a refused snapshot")
			}
		})
	}
}

// A snapshot or restore cut short by a crash leaves partial files; the
// sweep removes those and nothing else.
func TestSweepLeftovers(t *testing.T) {
	path := seed(t)
	db := open(t, path, "")
	snap := dbtest.Snapshot(t, db)
	dir := filepath.Dir(snap.Location)
	base := filepath.Base(path)
	leftovers := []string{
		filepath.Join(dir, base+".snap-20260101T000000.000000000Z.tmp"),    // a copy never renamed
		filepath.Join(dir, base+".snap-20260101T000001.000000000Z.crc32c"), // its checksum
		path + ".cutover-restore", // a restore's copy never renamed
	}
	kept := []string{
		filepath.Join(dir, "notes.txt"),                                    // not ours
		filepath.Join(dir, "other.db.snap-20260101T000000.000000000Z.tmp"), // another database's
	}
	for _, p := range append(slices.Clone(leftovers), kept...) {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed := dbtest.Sweep(t, db)
	want := slices.Sorted(slices.Values(leftovers))
	if !slices.Equal(removed, want) {
		t.Errorf("SweepLeftovers removed %v, want %v", removed, want)
	}
	for _, p := range append(kept, snap.Location, snap.Location+".crc32c", path) {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
	if _, err := db.Inspect(t.Context(), snap.ID); err != nil {
		t.Errorf("the snapshot after the sweep: %v", err)
	}
}
