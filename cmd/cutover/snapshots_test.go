package main

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/cutover-dev/cutover/services/migrator"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
)

func TestSnapshotsListAndPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	d, err := migsqlite.Driver{}.Open(t.Context(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := d.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	// A copy a crashed snapshot never renamed: prune removes it too.
	leftover := filepath.Join(filepath.Dir(path), migsqlite.SnapshotDir, "app.db.snap-20260101T000000.000000000Z.tmp")
	if err := os.WriteFile(leftover, []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t.Context(), "snapshots", "list", "--database", path); r.code != 0 || strings.Count(r.stdout, "\n") != 4 {
		t.Fatalf("snapshots list: %+v, want a header and 3 snapshots", r)
	}
	if r := runCLI(t.Context(), "snapshots", "prune", "--database", path, "--keep", "1"); r.code != 0 {
		t.Fatalf("snapshots prune: %+v", r)
	}
	left, err := migrator.ListSnapshots(t.Context(), migsqlite.Driver{}, path)
	if err != nil || len(left) != 1 {
		t.Fatalf("after prune --keep 1: %d snapshots (%v), want 1", len(left), err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after prune: %v, want it removed", leftover, err)
	}
	if r := runCLI(t.Context(), "snapshots", "list"); r.code != 2 || !strings.Contains(r.stderr, "--database is required") {
		t.Errorf("list without --database = %+v, want exit 2 saying what is missing", r)
	}
}
