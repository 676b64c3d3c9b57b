package runmarks

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
)

// Records are kept per snapshot: Since returns the runs that started at or
// after a time, by start, Forget removes them, Orphans finds the records of
// snapshots gone and writes cut short.
func TestRecords(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"db_snap_1", "db_snap_2", "db_snap_3"} {
		if err := Start(dir, migrator.Run{ID: "run" + id[len(id)-1:], Snapshot: id, Started: t0.Add(time.Duration(i) * time.Hour)}, "s"); err != nil {
			t.Fatal(err)
		}
	}
	if err := End(dir, migrator.Run{ID: "run2", Snapshot: "db_snap_2"}, "e"); err != nil {
		t.Fatal(err)
	}
	if err := End(dir, migrator.Run{ID: "other", Snapshot: "db_snap_3"}, "e"); err == nil {
		t.Error("End of another run's record: no error")
	}
	got, err := Since(dir, "db_snap_", t0.Add(time.Hour))
	if err != nil || len(got) != 2 || got[0].Run != "run2" || !got[0].Marked() || got[0].End != "e" || got[0].Start != "s" || got[1].Run != "run3" || got[1].Marked() {
		t.Fatalf("Since = %+v, %v; want run2 (marked) then run3 (not)", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db_snap_9"+Suffix+".tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	orphans := Orphans(dir, "db_snap_", func(id string) bool { return id != "db_snap_1" })
	if len(orphans) != 2 {
		t.Errorf("Orphans = %v, want db_snap_1's record and the temporary file", orphans)
	}
	forgot, err := Forget(dir, "db_snap_", t0.Add(time.Hour))
	if err != nil || len(forgot) != 2 {
		t.Fatalf("Forget = %+v, %v", forgot, err)
	}
	if left, _ := Since(dir, "db_snap_", t0); len(left) != 1 || left[0].Run != "run1" {
		t.Errorf("after Forget: %+v, want run1 alone", left)
	}
	if err := Start(dir, migrator.Run{ID: "x", Snapshot: "../escape"}, ""); err == nil {
		t.Error("a snapshot id with a slash was accepted")
	}
}

// FuzzRead: whatever a record file holds, Read returns a record or an
// error, and Since leaves unreadable records out, never panicking.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"run":"r","snapshot":"db_snap_1","started":"2026-01-01T00:00:00Z","start":"{}"}`))
	f.Add([]byte(`{"run":1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "db_snap_1"+Suffix), b, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Read(dir, "db_snap_1")
		recs, serr := Since(dir, "db_snap_", time.Time{})
		if serr != nil {
			t.Fatal(serr)
		}
		if len(recs) == 1 && (err != nil || recs[0].Snapshot != "db_snap_1" || r.Snapshot != "db_snap_1") {
			t.Errorf("Since returned %+v for a record Read gives %+v, %v", recs, r, err)
		}
	})
}
