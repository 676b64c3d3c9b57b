package sqlite_test

import (
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// BenchmarkSnapshotRestore measures a snapshot (file copy under the write
// lock, then quick_check of the copy while it is synced and hashed) and a
// restore (copy of the snapshot, hashed on its way and compared with the
// snapshot's checksum, renamed into place, the replaced file kept as a
// snapshot by a hard link) of a SQLite
// database of CUTOVER_BENCH_SIZE_MB (default 16) against the floor: a plain
// copy of the file with an fsync.
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
	var floor, snap, restore time.Duration
	for b.Loop() {
		start := time.Now()
		floorCopy := filepath.Join(b.TempDir(), "copy.db")
		if err := copyFileSync(path, floorCopy); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(start)
		// Freed at once, as the restore's temp file is: copies left behind
		// would make each later large write (the restore's) land on memory
		// the VM has just reclaimed, which costs several times a copy here.
		if err := os.Remove(floorCopy); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		s, err := h.Snapshot(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		snap += time.Since(start)
		start = time.Now()
		if _, err := h.Restore(b.Context(), s.ID); err != nil {
			b.Fatal(err)
		}
		restore += time.Since(start)
		// The restored snapshot, and the replaced state the restore kept.
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
	b.ReportMetric(float64(floor.Milliseconds())/n, "floor-copy-ms")
	b.ReportMetric(float64(snap.Milliseconds())/n, "snap-ms")
	b.ReportMetric(float64(restore.Milliseconds())/n, "restore-ms")
	b.ReportMetric(float64(snap)/float64(floor), "snap/floor")
	b.ReportMetric(float64(restore)/float64(floor), "restore/floor")
}

func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
