package postgres_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
	"github.com/cutover-dev/cutover/services/migrator/postgres"
)

// BenchmarkSnapshotRestore measures, on one database of CUTOVER_BENCH_SIZE_MB
// (default 16), a snapshot and a restore by each method against the floor:
// copying the database's own data files (base/<oid> after a CHECKPOINT) with
// an fsync per file, which is the least work any physical copy can do and
// what CREATE DATABASE ... STRATEGY FILE_COPY does inside the server. Needs
// the server on this machine, readable data files (run as root or postgres)
// and a superuser role (to read data_directory).
func BenchmarkSnapshotRestore(b *testing.B) {
	url, sdb := blobsDatabase(b)
	var bytes int64
	if err := sdb.QueryRow(`SELECT pg_database_size(current_database())`).Scan(&bytes); err != nil {
		b.Fatal(err)
	}
	b.Logf("database: %d MB in %s", bytes>>20, baseDir(b, sdb))
	sdb.Close()

	var floor, tSnap, tRestore, dSnap, dRestore time.Duration
	for b.Loop() {
		// A restore recreates the database under a new OID: look it up each time.
		fresh, err := sql.Open("pgx", url)
		if err != nil {
			b.Fatal(err)
		}
		dir := baseDir(b, fresh)
		fresh.Close()
		floor += timeIt(b, func() error { return pgtest.CopyTree(dir, filepath.Join(b.TempDir(), "copy")) })
		for _, m := range []struct {
			method        string
			snap, restore *time.Duration
		}{{postgres.MethodTemplate, &tSnap, &tRestore}, {postgres.MethodDump, &dSnap, &dRestore}} {
			db, err := postgres.Driver{Method: m.method, DumpDir: b.TempDir()}.Open(b.Context(), url, "")
			if err != nil {
				b.Fatal(err)
			}
			var id string
			*m.snap += timeIt(b, func() error {
				s, err := db.Snapshot(b.Context())
				id = s.ID
				return err
			})
			*m.restore += timeIt(b, func() error { _, err := db.Restore(b.Context(), id); return err })
			// The restored snapshot, and the replaced state the restore kept.
			list, err := db.Snapshots(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range list {
				if err := db.DropSnapshot(b.Context(), s.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
	b.ReportMetric(float64(bytes>>20), "db-MB")
	b.ReportMetric(ms(floor), "floor-copy-ms")
	b.ReportMetric(ms(tSnap), "template-snap-ms")
	b.ReportMetric(ms(tRestore), "template-restore-ms")
	b.ReportMetric(ms(dSnap), "dump-snap-ms")
	b.ReportMetric(ms(dRestore), "dump-restore-ms")
	b.ReportMetric(float64(tSnap)/float64(floor), "template-snap/floor")
	b.ReportMetric(float64(tRestore)/float64(floor), "template-restore/floor")
}

// blobsDatabase creates a database of CUTOVER_BENCH_SIZE_MB (default 16)
// in one table of about 1 KB rows, TOAST-free (below the 2 KB threshold),
// and returns its URL and a pool on it.
func blobsDatabase(b *testing.B) (string, *sql.DB) {
	url, sdb := pgtest.NewDatabase(b)
	if _, err := sdb.Exec(`CREATE TABLE blobs (id BIGINT PRIMARY KEY, body TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	rows := pgtest.BenchSizeMB(b) * 1024 * 1024 / 1100
	if _, err := sdb.Exec(`INSERT INTO blobs SELECT i, repeat(md5(i::text), 31) FROM generate_series(1, $1) i`, rows); err != nil {
		b.Fatal(err)
	}
	return url, sdb
}

var timeIt = dbtest.TimeIt

// baseDir returns the directory of the database's files after a checkpoint.
func baseDir(b *testing.B, db *sql.DB) string {
	b.Helper()
	var data, oid string
	if err := db.QueryRow(`SELECT current_setting('data_directory'), (SELECT oid::text FROM pg_database WHERE datname = current_database())`).Scan(&data, &oid); err != nil {
		b.Skipf("floor needs the data directory (superuser): %v", err)
	}
	if _, err := db.Exec(`CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(data, "base", oid)
	if _, err := os.ReadDir(dir); err != nil {
		b.Skipf("floor needs to read %s (run as root or postgres on the server's machine): %v", dir, err)
	}
	return dir
}
