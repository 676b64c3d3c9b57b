package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t) })
}

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	return storetest.Open(t, func(ctx context.Context) (*sqlite.Store, error) { return sqlite.Open(ctx, path) })
}

func TestReopenKeepsHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	storetest.ReopenKeepsHistory(t, func(ctx context.Context) (storetest.ClosingStore, error) { return sqlite.Open(ctx, path) })
}

// TestOpenRefusesADirtySchema: a schema a failed migration left dirty is
// refused with the version and what to do, not used half-migrated.
func TestOpenRefusesADirtySchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE schema_migrations SET dirty = 1`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = sqlite.Open(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "version 2 is dirty") || !strings.Contains(err.Error(), "restore the file from a backup") {
		t.Fatalf("Open of a dirty schema: %v", err)
	}
}
