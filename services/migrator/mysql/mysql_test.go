package mysql_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
	"github.com/cutover-dev/cutover/services/migrator/internal/mytest"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
)

var open = dbtest.Open

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

var strs = dbtest.Strings

func dbName(t testing.TB, url string) string {
	t.Helper()
	cfg, err := mysql.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.DBName
}

func TestOpenRefuses(t *testing.T) {
	server := mytest.Server(t)
	for _, tc := range []struct{ name, url, want string }{
		{"not mysql", "postgres://u@h/db", `scheme "postgres" is not mysql`},
		{"no database", mytest.WithDatabase(server, ""), "names no database; add /dbname"},
		{"system database", mytest.WithDatabase(server, "mysql"), "is a system database"},
		{"odd name", mytest.WithDatabase(server, "a-b"), "has characters other than"},
		{"missing database", mytest.WithDatabase(server, "cutover_no_such_db"), "does not exist; check the URL"},
		{"no server", "mysql://app:s3cret@127.0.0.1:1/app", "check that the server runs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mysql.Driver{}.Open(t.Context(), tc.url, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%s) = %v, want an error containing %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), ":cutover@") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// A restore puts the snapshot's tables, rows, foreign keys and triggers
// back, and leaves the database's own grants, its users and its options as
// they are: they belong to the database, which a restore keeps.
func TestRestoreKeepsGrantsUsersAndOptions(t *testing.T) {
	for _, method := range []string{mysql.MethodDump, mysql.MethodBackup} {
		t.Run(method, func(t *testing.T) {
			if method == mysql.MethodBackup {
				mytest.NeedBackup(t)
			}
			url, sdb := mytest.NewDatabase(t)
			name := dbName(t, url)
			admin := mytest.Open(t, mytest.Server(t), "")
			user := name + "_app"
			mustExec(t, admin, "ALTER DATABASE "+name+" CHARACTER SET latin1 COLLATE latin1_swedish_ci")
			mustExec(t, admin, "CREATE USER '"+user+"'@'127.0.0.1' IDENTIFIED BY 'app-pw'")
			t.Cleanup(func() { _, _ = admin.Exec("DROP USER IF EXISTS '" + user + "'@'127.0.0.1'") })
			mustExec(t, sdb, `CREATE TABLE parents (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL, children INT NOT NULL DEFAULT 0)`)
			mustExec(t, sdb, `CREATE TABLE kids (id BIGINT AUTO_INCREMENT PRIMARY KEY, parent_id BIGINT NOT NULL, CONSTRAINT kids_parent FOREIGN KEY (parent_id) REFERENCES parents (id))`)
			mustExec(t, sdb, `CREATE TRIGGER kids_count AFTER INSERT ON kids FOR EACH ROW UPDATE parents SET children = children + 1 WHERE id = NEW.parent_id`)
			mustExec(t, sdb, `INSERT INTO parents (name) VALUES ('a'), ('b')`)
			mustExec(t, sdb, `INSERT INTO kids (parent_id) VALUES (1), (1), (2)`)
			mustExec(t, admin, "GRANT SELECT, INSERT ON "+name+".* TO '"+user+"'@'127.0.0.1'")
			mustExec(t, admin, "GRANT UPDATE (name) ON "+name+".parents TO '"+user+"'@'127.0.0.1'")
			grants := strs(t, admin, "SHOW GRANTS FOR '"+user+"'@'127.0.0.1'")

			db := open(t, mysql.Driver{DumpDir: t.TempDir(), Method: method}, url, "")
			snap := dbtest.Snapshot(t, db)
			// The service goes on: rows, a table, a trigger dropped.
			mustExec(t, sdb, `INSERT INTO kids (parent_id) VALUES (2)`)
			mustExec(t, sdb, `DROP TRIGGER kids_count`)
			mustExec(t, sdb, `CREATE TABLE later (id INT PRIMARY KEY)`)
			dbtest.Restore(t, db, snap.ID)

			if got := strings.Join(strs(t, sdb, `SELECT CONCAT(name, ':', children) FROM parents ORDER BY id`), ","); got != "a:2,b:1" {
				t.Errorf("parents after restore = %s, want a:2,b:1", got)
			}
			if got := strs(t, sdb, `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1`); !slices.Equal(got, []string{"kids", "parents"}) {
				t.Errorf("tables after restore = %v, want kids, parents", got)
			}
			// The trigger is back and fires; the foreign key is back and holds.
			mustExec(t, sdb, `INSERT INTO kids (parent_id) VALUES (2)`)
			if got := strs(t, sdb, `SELECT children FROM parents WHERE id = 2`); !slices.Equal(got, []string{"2"}) {
				t.Errorf("children of b = %v after an insert, want 2: the trigger was not restored", got)
			}
			if _, err := sdb.Exec(`INSERT INTO kids (parent_id) VALUES (99)`); err == nil || !strings.Contains(err.Error(), "foreign key") {
				t.Errorf("insert of an orphan = %v, want a foreign key error", err)
			}
			if got := strs(t, admin, "SHOW GRANTS FOR '"+user+"'@'127.0.0.1'"); !slices.Equal(got, grants) {
				t.Errorf("grants after restore = %v, want %v", got, grants)
			}
			if got := strs(t, admin, `SELECT CONCAT(default_character_set_name, '/', default_collation_name) FROM information_schema.schemata WHERE schema_name = ?`, name); !slices.Equal(got, []string{"latin1/latin1_swedish_ci"}) {
				t.Errorf("database options after restore = %v, want latin1/latin1_swedish_ci", got)
			}
			// The service's user still works with its grants.
			app := mytest.Open(t, strings.Replace(mytest.WithDatabase(mytest.Server(t), name), "//cutover:cutover@", "//"+user+":app-pw@", 1), name)
			if _, err := app.Exec(`UPDATE parents SET name = 'c' WHERE id = 1`); err != nil {
				t.Errorf("the service's column grant after restore: %v", err)
			}
			if got := strs(t, admin, `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ? AND schema_name <> ?`, name+"%", name); len(got) != 0 {
				t.Errorf("databases left by the restore: %v", got)
			}
		})
	}
}

// A dump changed after it was taken (same size, completion line intact) is
// refused while it loads, before the database is touched; a dump cut short
// is refused before anything.
func TestRestoreRefusesDamagedDump(t *testing.T) {
	url, sdb := mytest.NewDatabase(t)
	mustExec(t, sdb, `CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))`)
	mustExec(t, sdb, `INSERT INTO t VALUES (1, 'snapshotted')`)
	db := open(t, mysql.Driver{DumpDir: t.TempDir()}, url, "")
	snap := dbtest.Snapshot(t, db)
	mustExec(t, sdb, `UPDATE t SET v = 'live'`)
	body, err := os.ReadFile(snap.Location)
	if err != nil {
		t.Fatal(err)
	}

	damaged := []byte(strings.Replace(string(body), "snapshotted", "snapshotteD", 1))
	if err := os.WriteFile(snap.Location, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(t.Context(), snap.ID); err == nil || !strings.Contains(err.Error(), "SHA-256") || !strings.Contains(err.Error(), "the database is unchanged") {
		t.Errorf("restore of a changed dump = %v, want a SHA-256 mismatch and the database unchanged", err)
	}
	if got := strs(t, sdb, `SELECT v FROM t`); !slices.Equal(got, []string{"live"}) {
		t.Errorf("row after the refused restore = %v, want live", got)
	}

	if err := os.WriteFile(snap.Location, body[:len(body)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(t.Context(), snap.ID); err == nil || !strings.Contains(err.Error(), "refuse to restore") {
		t.Errorf("restore of a cut dump = %v, want it refused", err)
	}
	if _, err := db.Inspect(t.Context(), "nope"); !errors.Is(err, migrator.ErrSnapshotNotFound) {
		t.Errorf("Inspect(nope) = %v, want ErrSnapshotNotFound", err)
	}
}

// The default method takes a dump of a database below BackupAbove, a
// backup above it, and a dump again when a table cannot be backed up
// (not InnoDB).
func TestAutoMethodChoosesBySize(t *testing.T) {
	mytest.NeedBackup(t)
	url, sdb := mytest.NewDatabase(t)
	mustExec(t, sdb, `CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))`)
	mustExec(t, sdb, `INSERT INTO t VALUES (1, 'a')`)
	for _, tc := range []struct {
		above int64
		aria  bool
		want  string
	}{{1 << 40, false, ".sql"}, {1, false, ".backup"}, {1, true, ".sql"}} {
		if tc.aria {
			mustExec(t, sdb, `CREATE TABLE log (id INT PRIMARY KEY) ENGINE=Aria`)
		}
		db := open(t, mysql.Driver{DumpDir: t.TempDir(), BackupAbove: tc.above}, url, "")
		snap, err := db.Snapshot(t.Context())
		if err != nil || !strings.HasSuffix(snap.ID, tc.want) {
			t.Errorf("auto snapshot with BackupAbove %d (an Aria table: %v) = %s, %v; want an id ending %s", tc.above, tc.aria, snap.ID, err, tc.want)
		}
	}
	// A backup that fails (here a mariadb-backup that exits 1) falls back
	// to the dump.
	mustExec(t, sdb, `DROP TABLE log`)
	bin := t.TempDir()
	for _, tool := range []string{"mariadb-dump", "mariadb"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "mariadb-backup"), []byte("#!/bin/sh\necho no RELOAD privilege >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	db := open(t, mysql.Driver{DumpDir: t.TempDir(), BackupAbove: 1, Bin: bin}, url, "")
	if snap, err := db.Snapshot(t.Context()); err != nil || !strings.HasSuffix(snap.ID, ".sql") {
		t.Errorf("auto snapshot when mariadb-backup fails = %s, %v; want the dump", snap.ID, err)
	}
	db = open(t, mysql.Driver{DumpDir: t.TempDir(), Method: mysql.MethodBackup, Bin: bin}, url, "")
	if _, err := db.Snapshot(t.Context()); err == nil || !strings.Contains(err.Error(), "no RELOAD privilege") {
		t.Errorf("backup snapshot when mariadb-backup fails = %v, want its error", err)
	}
}

// A backup whose table file was changed after it was taken (same size) is
// refused by InnoDB's page checksums while it imports, before the database
// is touched; one whose files are cut short is refused before anything; a
// table the method cannot copy by itself (not InnoDB) is refused at the
// snapshot, naming the dump method.
func TestRestoreRefusesDamagedBackup(t *testing.T) {
	mytest.NeedBackup(t)
	url, sdb := mytest.NewDatabase(t)
	mustExec(t, sdb, `CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))`)
	mustExec(t, sdb, `INSERT INTO t VALUES (1, 'snapshotted')`)
	db := open(t, mysql.Driver{DumpDir: t.TempDir(), Method: mysql.MethodBackup}, url, "")
	snap := dbtest.Snapshot(t, db)
	mustExec(t, sdb, `UPDATE t SET v = 'live'`)
	ibd := filepath.Join(snap.Location, "tables", "t.ibd")
	body, err := os.ReadFile(ibd)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(body), "snapshotted")
	if i < 0 {
		t.Fatal("the row is not in t.ibd")
	}
	damaged := slices.Clone(body)
	damaged[i] = 'S'
	if err := os.WriteFile(ibd, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(t.Context(), snap.ID); err == nil || !strings.Contains(err.Error(), "import t") || !strings.Contains(err.Error(), "the database is unchanged") {
		t.Errorf("restore of a changed backup = %v, want the import refused and the database unchanged", err)
	}
	if got := strs(t, sdb, `SELECT v FROM t`); !slices.Equal(got, []string{"live"}) {
		t.Errorf("row after the refused restore = %v, want live", got)
	}

	if err := os.WriteFile(ibd, body[:len(body)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Restore(t.Context(), snap.ID); err == nil || !strings.Contains(err.Error(), "refuse to restore") || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("restore of a cut backup = %v, want it refused", err)
	}

	mustExec(t, sdb, `CREATE TABLE log (id INT PRIMARY KEY) ENGINE=Aria`)
	if _, err := db.Snapshot(t.Context()); err == nil || !strings.Contains(err.Error(), "table log is Aria, not InnoDB; use the dump method") {
		t.Errorf("backup of a database with an Aria table = %v, want it refused naming the table and the dump method", err)
	}
}

// A database with a view is refused with the view's name: a restore would
// not bring it back.
func TestSnapshotRefusesWhatItCannotRestore(t *testing.T) {
	url, sdb := mytest.NewDatabase(t)
	mustExec(t, sdb, `CREATE TABLE t (id INT PRIMARY KEY)`)
	mustExec(t, sdb, `CREATE VIEW t_ids AS SELECT id FROM t`)
	db := open(t, mysql.Driver{DumpDir: t.TempDir()}, url, "")
	if _, err := db.Snapshot(t.Context()); err == nil || !strings.Contains(err.Error(), "view t_ids") {
		t.Errorf("Snapshot = %v, want it refused naming view t_ids", err)
	}
}

// While another session holds the database's server lock, a migration waits
// LockWait, then fails with ErrLockHeld naming the holder.
func TestLockHeldByAnotherSession(t *testing.T) {
	url, _ := mytest.NewDatabase(t)
	db := open(t, mysql.Driver{DumpDir: t.TempDir(), LockWait: time.Second}, url, "../testdata/mysql/ok")
	holder := mytest.Open(t, mytest.Server(t), "")
	conn, err := holder.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	name := db.(*mysql.Database).LockName()
	var got int
	if err := conn.QueryRowContext(t.Context(), `SELECT GET_LOCK(?, 1)`, name).Scan(&got); err != nil || got != 1 {
		t.Fatalf("GET_LOCK = %d, %v", got, err)
	}
	err = db.Up(t.Context(), 4)
	if !errors.Is(err, migrator.ErrLockHeld) || !strings.Contains(err.Error(), name) {
		t.Fatalf("Up while locked = %v, want ErrLockHeld naming %s", err, name)
	}
	if v, _, _ := db.Version(t.Context()); v != 0 {
		t.Errorf("version %d after the refused Up, want 0", v)
	}
	if _, err := conn.ExecContext(t.Context(), `SELECT RELEASE_LOCK(?)`, name); err != nil {
		t.Fatal(err)
	}
	if err := db.Up(t.Context(), 4); err != nil {
		t.Fatalf("Up after the lock was released: %v", err)
	}
	if v, dirty, _ := db.Version(t.Context()); v != 4 || dirty {
		t.Errorf("version %d dirty %v, want 4 clean", v, dirty)
	}
}

// The client programs get the password from an option file, never from
// their command line or environment.
func TestPasswordNeverOnACommandLine(t *testing.T) {
	url, _ := mytest.NewDatabase(t)
	bin := t.TempDir()
	record := filepath.Join(bin, "seen")
	script := "#!/bin/sh\necho \"$@\" > " + record + "\nenv | grep -E '^(MYSQL_PWD|MARIADB_PWD)=' >> " + record + "\necho 'no thanks' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(bin, "mariadb-dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	db := open(t, mysql.Driver{DumpDir: t.TempDir(), Bin: bin}, url, "")
	_, err := db.Snapshot(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no thanks") {
		t.Fatalf("Snapshot with a failing dump = %v, want its stderr in the error", err)
	}
	seen, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(seen), "--defaults-file=") || strings.Contains(string(seen), "--password") || strings.Contains(string(seen), "-pcutover") || strings.Contains(string(seen), "PWD=") {
		t.Errorf("the dump's arguments and password variables:\n%s\nwant --defaults-file and no password", seen)
	}
	if list, _ := db.Snapshots(t.Context()); len(list) != 0 {
		t.Errorf("snapshots after a failed dump: %v", list)
	}
}

// What an interrupted snapshot or restore left (a temporary dump, a label
// without its dump, a scratch database) is swept; other files are not.
func TestSweepLeftovers(t *testing.T) {
	url, _ := mytest.NewDatabase(t)
	name := dbName(t, url)
	dumps := t.TempDir()
	drv := mysql.Driver{DumpDir: dumps}
	db := open(t, drv, url, "")
	snap := dbtest.Snapshot(t, db)
	dir := filepath.Dir(snap.Location)
	tmp := filepath.Join(dir, name+"_snap_20260101T000000_000000.sql.tmp")
	orphan := filepath.Join(dir, name+"_snap_20260101T000001_000000.sql.json")
	other := filepath.Join(dir, "notes.txt")
	for _, p := range []string{tmp, other} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(orphan, []byte(`{"cutover_snapshot_of":"`+name+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// A backup cut short: its temporary directory.
	tmpBackup := filepath.Join(dir, name+"_snap_20260101T000002_000000.backup.tmp")
	if err := os.MkdirAll(filepath.Join(tmpBackup, "tables"), 0o700); err != nil {
		t.Fatal(err)
	}
	admin := mytest.Open(t, mytest.Server(t), "")
	mustExec(t, admin, "CREATE DATABASE "+name+"_new_20260101T000000_000000")
	removed, err := migrator.SweepLeftovers(context.WithoutCancel(t.Context()), drv, url)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 4 {
		t.Errorf("removed %v, want the temporary dump and backup, the orphan label and the scratch database", removed)
	}
	if _, err := os.Stat(tmpBackup); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary backup directory is still there: %v", err)
	}
	for _, p := range []string{snap.Location, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if got := strs(t, admin, `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?`, name+"\\_new\\_%"); len(got) != 0 {
		t.Errorf("scratch databases left: %v", got)
	}
}
