package mysql_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
	"github.com/cutover-dev/cutover/services/migrator/internal/mytest"
	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
	"github.com/cutover-dev/cutover/services/migrator/internal/sqlrows"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
)

// BenchmarkSnapshotRestore measures, on one InnoDB database of
// CUTOVER_BENCH_SIZE_MB (default 16), each way to snapshot it, against the
// floor: copying the database's own files (<datadir>/<db>/, after FLUSH
// TABLES) with an fsync per file, the least work any copy can do. Each
// snapshot runs while a writer alternates an insert into another table and
// an update of an existing row; the longest single write is reported
// (target: no writer blocked for more than 1 s).
//
//   - dump: the driver's Snapshot and Restore with MethodDump (mariadb-dump
//     --single-transaction; restore by loading it into a scratch database).
//   - default: the driver's Snapshot and Restore with its default method,
//     auto, which above Driver.BackupAbove takes MethodBackup
//     (mariadb-backup --backup --no-lock --databases=<db>, --prepare
//     --export; restore by IMPORT TABLESPACE into a scratch database) and
//     below it the dump; the method taken is logged.
//   - copy: CREATE TABLE ... LIKE into a snapshot schema, then INSERT ...
//     SELECT of every table in one REPEATABLE READ transaction (consistent,
//     but InnoDB takes shared locks on the rows it reads: writers wait).
//   - locked backup: mariadb-backup --backup --databases=<db> then
//     --prepare with its default locks (BACKUP STAGE BLOCK_COMMIT), to show
//     what --no-lock saves the writers; only the snapshot.
//
// Needs the server on this machine with a readable data directory (run as
// root), as scripts/mariadb-up.sh starts it.
func BenchmarkSnapshotRestore(b *testing.B) {
	url, sdb := mytest.NewDatabase(b)
	name := dbName(b, url)
	size := pgtest.BenchSizeMB(b)
	if _, err := sdb.Exec(`CREATE TABLE blobs (id BIGINT PRIMARY KEY, body VARCHAR(1000) NOT NULL) ENGINE=InnoDB`); err != nil {
		b.Fatal(err)
	}
	if _, err := sdb.Exec(`CREATE TABLE writes (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB`); err != nil {
		b.Fatal(err)
	}
	// About 1 KB per row, in batches of 100,000.
	rows := size * 1024 * 1024 / 1100
	for from := 1; from <= rows; from += 100_000 {
		to := min(from+99_999, rows)
		if _, err := sdb.Exec(fmt.Sprintf(`INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 31) FROM seq_%d_to_%d`, from, to)); err != nil {
			b.Fatal(err)
		}
	}
	var bytes int64
	var datadir string
	if err := sdb.QueryRow(`SELECT @@datadir`).Scan(&datadir); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(datadir, name)
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Skipf("floor needs to read %s (run as root on the server's machine): %v", dir, err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			bytes += fi.Size()
		}
	}
	b.Logf("database: %d MB (%d rows) in %s", bytes>>20, rows, dir)
	admin := mytest.Open(b, mytest.Server(b), "")
	drv := mysql.Driver{DumpDir: b.TempDir(), Method: mysql.MethodDump}
	db, err := drv.Open(b.Context(), url, "")
	if err != nil {
		b.Fatal(err)
	}
	drv.Method = "" // the default, auto
	phys, err := drv.Open(b.Context(), url, "")
	if err != nil {
		b.Fatal(err)
	}

	var floor, dSnap, dRestore, cSnap, bSnap time.Duration
	var dStall, cStall, bStall time.Duration
	var pSnap, pStall, pRestore time.Duration // the default method
	for b.Loop() {
		floor += timeIt(b, func() error {
			if _, err := sdb.Exec(`FLUSH TABLES`); err != nil {
				return err
			}
			return pgtest.CopyTree(dir, filepath.Join(b.TempDir(), "copy"))
		})

		for _, m := range []struct {
			db                   migrator.Database
			snap, stall, restore *time.Duration
		}{{db, &dSnap, &dStall, &dRestore}, {phys, &pSnap, &pStall, &pRestore}} {
			var id string
			t, stall := whileWriting(b, url, name, func() error {
				s, err := m.db.Snapshot(b.Context())
				id = s.ID
				return err
			})
			*m.snap, *m.stall = *m.snap+t, max(*m.stall, stall)
			if m.db == phys {
				b.Logf("default method: snapshot %s", id)
			}
			*m.restore += timeIt(b, func() error { _, err := m.db.Restore(b.Context(), id); return err })
			if err := m.db.DropSnapshot(b.Context(), id); err != nil {
				b.Fatal(err)
			}
		}

		snap := fmt.Sprintf("%s_bc_%d", name, time.Now().UnixNano()%1e9)
		t, stall := whileWriting(b, url, name, func() error { return copySchema(b.Context(), admin, name, snap) })
		cSnap, cStall = cSnap+t, max(cStall, stall)
		if _, err := admin.Exec("DROP DATABASE " + snap); err != nil {
			b.Fatal(err)
		}

		if _, err := exec.LookPath("mariadb-backup"); err == nil {
			target := filepath.Join(b.TempDir(), "backup")
			t, stall = whileWriting(b, url, name, func() error { return backup(b, datadir, name, target) })
			bSnap, bStall = bSnap+t, max(bStall, stall)
		}
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
	b.ReportMetric(float64(bytes>>20), "db-MB")
	b.ReportMetric(ms(floor), "floor-copy-ms")
	report := func(method string, snap, restore, stall time.Duration) {
		b.ReportMetric(ms(snap), method+"-snap-ms")
		b.ReportMetric(float64(snap)/float64(floor), method+"-snap/floor")
		b.ReportMetric(float64(stall.Milliseconds()), method+"-max-write-ms")
		if restore > 0 {
			b.ReportMetric(ms(restore), method+"-restore-ms")
			b.ReportMetric(float64(restore)/float64(floor), method+"-restore/floor")
		}
	}
	report("dump", dSnap, dRestore, dStall)
	report("default", pSnap, pRestore, pStall)
	report("copy", cSnap, 0, cStall)
	report("locked-backup", bSnap, 0, bStall)
}

var timeIt = dbtest.TimeIt

// whileWriting times f while a writer inserts into the writes table and
// updates rows of blobs, one statement at a time, and returns the longest.
func whileWriting(b *testing.B, url, name string, f func() error) (time.Duration, time.Duration) {
	b.Helper()
	w := mytest.Open(b, url, name)
	w.SetMaxOpenConns(1)
	var longest atomic.Int64
	ctx, cancel := context.WithCancel(b.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ctx.Err() == nil; i++ {
			// An insert, then an update of an existing row: a snapshot that
			// reads with shared locks blocks the second kind.
			q, args := `INSERT INTO writes (at) VALUES (NOW(6))`, []any(nil)
			if i%2 == 0 {
				q, args = `UPDATE blobs SET body = REPEAT(MD5(?), 31) WHERE id = ?`, []any{i, 1 + (i*7919)%1000}
			}
			start := time.Now()
			if _, err := w.ExecContext(context.WithoutCancel(ctx), q, args...); err != nil {
				return
			}
			if d := time.Since(start); d.Nanoseconds() > longest.Load() {
				longest.Store(d.Nanoseconds())
			}
		}
	}()
	t := timeIt(b, f)
	cancel()
	wg.Wait()
	return t, time.Duration(longest.Load())
}

// copySchema copies every table of src into a new database dst, consistent
// across tables: one REPEATABLE READ transaction reads them all.
func copySchema(ctx context.Context, admin *sql.DB, src, dst string) error {
	c, err := admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "CREATE DATABASE "+dst); err != nil {
		return err
	}
	tables, err := tablesOf(ctx, c, src)
	if err != nil {
		return err
	}
	for _, t := range tables { // DDL commits: before the transaction
		if _, err := c.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s.%s LIKE %s.%s", dst, t, src, t)); err != nil {
			return err
		}
	}
	if _, err := c.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return err
	}
	if _, err := c.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := c.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s.%s SELECT * FROM %s.%s", dst, t, src, t)); err != nil {
			_, _ = c.ExecContext(ctx, "ROLLBACK")
			return err
		}
	}
	_, err = c.ExecContext(ctx, "COMMIT")
	return err
}

// backup takes a prepared physical backup of database name with
// mariadb-backup and its default locks, as root over the server's socket.
func backup(b *testing.B, datadir, name, target string) error {
	sock := filepath.Join(filepath.Dir(filepath.Clean(datadir)), "mysqld.sock")
	for _, args := range [][]string{
		{"--backup", "--user=root", "--socket=" + sock, "--datadir=" + datadir, "--databases=" + name, "--target-dir=" + target},
		{"--prepare", "--target-dir=" + target},
	} {
		out, err := exec.CommandContext(b.Context(), "mariadb-backup", append([]string{"--no-defaults"}, args...)...).CombinedOutput()
		if err != nil {
			tail := string(out)
			if len(tail) > 1500 {
				tail = tail[len(tail)-1500:]
			}
			return fmt.Errorf("mariadb-backup %s: %w: %s", args[0], err, tail)
		}
	}
	return nil
}

// tablesOf lists the base tables of database name.
func tablesOf(ctx context.Context, c *sql.Conn, name string) ([]string, error) {
	return sqlrows.Strings(ctx, c, `SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'`, name)
}
