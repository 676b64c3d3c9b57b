package main

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/services/migrator"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
	_ "modernc.org/sqlite"
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
	if err := runSnapshots(t.Context(), []string{"list", "--database", path}); err != nil {
		t.Fatal(err)
	}
	if err := runSnapshots(t.Context(), []string{"prune", "--database", path, "--keep", "1"}); err != nil {
		t.Fatal(err)
	}
	left, err := migrator.ListSnapshots(t.Context(), migsqlite.Driver{}, path)
	if err != nil || len(left) != 1 {
		t.Fatalf("after prune --keep 1: %d snapshots (%v), want 1", len(left), err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after prune: %v, want it removed", leftover, err)
	}
	if err := runSnapshots(t.Context(), []string{"list"}); err == nil {
		t.Error("list without --database must say what is missing")
	}
}
