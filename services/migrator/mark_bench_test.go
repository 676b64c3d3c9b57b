package migrator_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
	"github.com/cutover-dev/cutover/services/migrator/internal/mytest"
	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
	"github.com/cutover-dev/cutover/services/migrator/postgres"
	"github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// BenchmarkMarkVersusSnapshot measures, on each driver, on one table of
// about 1 KB rows filling CUTOVER_BENCH_SIZE_MB (default 16), what a run's
// mark costs (MarkRun, taken when a run succeeds) against the snapshot taken
// before the run, in the same iteration, and what the count before a
// restore (WrittenAfter, against the mark) then costs. PostgreSQL reads
// write counters; SQLite copies the file; MariaDB copies the tables on the
// server. PostgreSQL and MariaDB run when CUTOVER_TEST_POSTGRES and
// CUTOVER_TEST_MARIADB name servers.
func BenchmarkMarkVersusSnapshot(b *testing.B) {
	size := pgtest.BenchSizeMB(b)
	rows := size * 1024 * 1024 / 1100
	for _, tc := range []struct {
		name string
		make func(b *testing.B) (migrator.Driver, string)
	}{
		{"sqlite", func(b *testing.B) (migrator.Driver, string) {
			path := filepath.Join(b.TempDir(), "app.db")
			db, err := sql.Open("sqlite", path)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			benchExec(b, db, `CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`,
				fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) INSERT INTO blobs (body) SELECT randomblob(1024) FROM n`, rows))
			return sqlite.Driver{}, path
		}},
		{"postgres", func(b *testing.B) (migrator.Driver, string) {
			if os.Getenv("CUTOVER_TEST_POSTGRES") == "" {
				b.Skip("CUTOVER_TEST_POSTGRES is not set")
			}
			url, db := pgtest.NewDatabase(b)
			benchExec(b, db, `CREATE TABLE blobs (id BIGINT PRIMARY KEY, body TEXT NOT NULL)`,
				fmt.Sprintf(`INSERT INTO blobs SELECT i, repeat(md5(i::text), 31) FROM generate_series(1, %d) i`, rows))
			db.Close()
			return postgres.Driver{DumpDir: b.TempDir()}, url
		}},
		{"mysql", func(b *testing.B) (migrator.Driver, string) {
			if os.Getenv("CUTOVER_TEST_MARIADB") == "" {
				b.Skip("CUTOVER_TEST_MARIADB is not set")
			}
			url, db := mytest.NewDatabase(b)
			benchExec(b, db, `CREATE TABLE blobs (id BIGINT PRIMARY KEY, body VARCHAR(1000) NOT NULL) ENGINE=InnoDB`)
			for from := 1; from <= rows; from += 100_000 {
				benchExec(b, db, fmt.Sprintf(`INSERT INTO blobs SELECT seq, REPEAT(MD5(seq), 31) FROM seq_%d_to_%d`, from, min(from+99_999, rows)))
			}
			return mysql.Driver{DumpDir: b.TempDir(), Method: mysql.MethodDump}, url
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			drv, loc := tc.make(b)
			db, err := drv.Open(b.Context(), loc, "")
			if err != nil {
				b.Fatal(err)
			}
			var snap, mark, count time.Duration
			i := 0
			for b.Loop() {
				i++
				var s migrator.Snapshot
				snap += dbtest.TimeIt(b, func() error { s, err = db.Snapshot(b.Context()); return err })
				if err := db.RecordRun(b.Context(), &migrator.Run{ID: fmt.Sprintf("bench-%d", i), Snapshot: s.ID, Started: s.Time}); err != nil {
					b.Fatal(err)
				}
				mark += dbtest.TimeIt(b, func() error { return db.MarkRun(b.Context()) })
				count += dbtest.TimeIt(b, func() error {
					loss, err := db.WrittenAfter(b.Context(), s.ID)
					if err == nil && (loss.Rows != 0 || loss.OwnIncluded) {
						err = fmt.Errorf("WrittenAfter = %+v, want nothing counted", loss)
					}
					return err
				})
				if err := db.RecordRun(b.Context(), nil); err != nil {
					b.Fatal(err)
				}
				if _, err := migrator.PruneSnapshots(b.Context(), drv, loc, 1); err != nil {
					b.Fatal(err)
				}
				if err := db.DropSnapshot(b.Context(), s.ID); err != nil {
					b.Fatal(err)
				}
				if _, err := migrator.SweepLeftovers(b.Context(), drv, loc); err != nil {
					b.Fatal(err)
				}
			}
			ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(b.N) }
			b.ReportMetric(float64(size), "db-MB")
			b.ReportMetric(ms(snap), "snapshot-ms")
			b.ReportMetric(ms(mark), "mark-ms")
			b.ReportMetric(ms(count), "count-ms")
			b.ReportMetric(float64(mark)/float64(snap), "mark/snapshot")
		})
	}
}

func benchExec(b *testing.B, db *sql.DB, qs ...string) {
	b.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}
