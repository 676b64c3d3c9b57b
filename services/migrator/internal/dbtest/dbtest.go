// Package dbtest holds what the database drivers' tests share, whatever the
// engine: opening a database through a driver, reading a column of strings,
// naming and dropping the databases a test creates.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/sqlrows"
)

// Open opens the database at location through drv with migrations from
// source, and closes it at the end of the test.
func Open(tb testing.TB, drv migrator.Driver, location, source string) migrator.Database {
	tb.Helper()
	db, err := drv.Open(tb.Context(), location, source)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// Strings runs q and returns its one column of every row; an error fails
// the test.
func Strings(tb testing.TB, db *sql.DB, q string, args ...any) []string {
	tb.Helper()
	out, err := sqlrows.Strings(tb.Context(), db, q, args...)
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	return out
}

// UniqueName returns a database name of this run's own: "cutover_t_" and
// eight random hex digits.
func UniqueName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "cutover_t_" + hex.EncodeToString(b)
}

// DropAll drops, through admin, every database that list names (a query of
// one text column taking arg), with drop giving the statement for a name.
// It is for a test's cleanup: it gives itself a minute, and what fails
// fails the test without stopping the other drops.
func DropAll(tb testing.TB, admin *sql.DB, list string, arg any, drop func(name string) string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := sqlrows.Strings(ctx, admin, list, arg)
	if err != nil {
		tb.Errorf("list test databases: %v", err)
		return
	}
	for _, n := range names {
		if _, err := admin.ExecContext(ctx, drop(n)); err != nil {
			tb.Errorf("drop test database %s: %v", n, err)
		}
	}
}

// Sweep runs db's SweepLeftovers and returns the paths it removed, sorted.
// A database without SweepLeftovers fails the test.
func Sweep(tb testing.TB, db migrator.Database) []string {
	tb.Helper()
	sweeper, ok := db.(interface {
		SweepLeftovers(context.Context) ([]string, error)
	})
	if !ok {
		tb.Fatalf("the %T database has no SweepLeftovers", db)
	}
	removed, err := sweeper.SweepLeftovers(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(removed)
	return removed
}

// Snapshot takes a snapshot of db; an error fails the test.
func Snapshot(tb testing.TB, db migrator.Database) migrator.Snapshot {
	tb.Helper()
	snap, err := db.Snapshot(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

// Up migrates db up to version v; an error fails the test.
func Up(tb testing.TB, db migrator.Database, v uint) {
	tb.Helper()
	if err := db.Up(tb.Context(), v); err != nil {
		tb.Fatal(err)
	}
}

// Restore restores snapshot id into db; an error fails the test.
func Restore(tb testing.TB, db migrator.Database, id string) {
	tb.Helper()
	if _, err := db.Restore(tb.Context(), id); err != nil {
		tb.Fatal(err)
	}
}

// Version returns db's version and whether it is dirty; an error fails the test.
func Version(tb testing.TB, db migrator.Database) (uint, bool) {
	tb.Helper()
	v, dirty, err := db.Version(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return v, dirty
}

// TimeIt returns how long f took; an error from f fails the benchmark.
func TimeIt(b *testing.B, f func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}
