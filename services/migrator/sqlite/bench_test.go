package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
	"github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// BenchmarkSnapshotRestore measures a snapshot (file copy under the write
// lock, hashed on its way, while quick_check reads the same frozen file; then
// an fsync) and a restore (copy of the snapshot, hashed on its way and
// compared with the snapshot's checksum, renamed into place, the replaced
// file kept as a snapshot by a hard link) of a SQLite database of
// CUTOVER_BENCH_SIZE_MB (default 16), each against its floor: a plain copy of
// the same file with an fsync, taken just before it.
func BenchmarkSnapshotRestore(b *testing.B) {
	size := 16
	if s := os.Getenv("CUTOVER_BENCH_SIZE_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("CUTOVER_BENCH_SIZE_MB=%q: want a size in MB", s)
		}
		size = n
	}
	path := filepath.Join(b.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)`,
		`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ` + strconv.Itoa(size*1024*1024/1100) + `)
		 INSERT INTO blobs (body) SELECT randomblob(1024) FROM n`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	db.Close()
	fi, _ := os.Stat(path)
	h, err := sqlite.Driver{}.Open(b.Context(), path, "")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(filepath.Dir(path), sqlite.SnapshotDir), 0o700); err != nil {
		b.Fatal(err)
	}
	// timed runs f after warmMemory and returns how long f took.
	timed := func(f func() error) time.Duration {
		warmMemory(b, 2*fi.Size())
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var floorSnap, floorRestore, snap, restore time.Duration
	for b.Loop() {
		// Each operation has a floor copy taken just before it, into the
		// same directory. The floor copies are kept until the iteration
		// ends, as the snapshot and the replaced file are: on this VM a
		// write to blocks the file system has not freed just before costs
		// up to twice as much (its disk is a sparse file on the host, and
		// ext4 here is mounted with discard), so every timed copy must
		// write to new blocks.
		floorA := filepath.Join(filepath.Dir(path), sqlite.SnapshotDir, "floor-a")
		floorB := path + ".floor-b"
		floorSnap += timed(func() error { return pgtest.CopyFile(path, floorA) })
		var s migrator.Snapshot
		snap += timed(func() (err error) { s, err = h.Snapshot(b.Context()); return err })
		floorRestore += timed(func() error { return pgtest.CopyFile(s.Location, floorB) })
		restore += timed(func() error { _, err := h.Restore(b.Context(), s.ID); return err })
		// The floor copies, the restored snapshot, and the replaced state
		// the restore kept.
		if err := errors.Join(os.Remove(floorA), os.Remove(floorB)); err != nil {
			b.Fatal(err)
		}
		list, err := h.Snapshots(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range list {
			if err := h.DropSnapshot(b.Context(), s.ID); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(fi.Size()>>20), "db-MB")
	b.ReportMetric(float64((floorSnap+floorRestore).Milliseconds())/2/n, "floor-copy-ms")
	b.ReportMetric(float64(snap.Milliseconds())/n, "snap-ms")
	b.ReportMetric(float64(restore.Milliseconds())/n, "restore-ms")
	b.ReportMetric(float64(snap)/float64(floorSnap), "snap/floor")
	b.ReportMetric(float64(restore)/float64(floorRestore), "restore/floor")
}
