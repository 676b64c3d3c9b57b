package migrator_test

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/migrator"
)

// dataSource writes a migration source: the target's 0001 (the one
// prepare applied) and, for each statement given, an up-only data
// migration 0002, 0003, ... running it: without a down file, a rollback
// goes through the snapshot.
func (tg target) dataSource(t *testing.T, stmts ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"0001_users.up.sql", "0001_users.down.sql"} {
		b, err := os.ReadFile(filepath.Join(tg.ok, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range stmts {
		name := filepath.Join(dir, "000"+string(rune('2'+i))+"_backfill.up.sql")
		if err := os.WriteFile(name, []byte(s+";\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rename is an up file that updates every row of users.
func (tg target) rename(suffix string) string {
	if tg.driver == "mysql" {
		return `UPDATE users SET name = CONCAT(name, '` + suffix + `')`
	}
	return `UPDATE users SET name = name || '` + suffix + `'`
}

// table names a table as the counts do (schema.table on PostgreSQL).
func (tg target) table(name string) string {
	if tg.driver == "postgres" {
		return "public." + name
	}
	return name
}

// writesOf returns the counts of a restore per table.
func writesOf(r *events.SnapshotRestore) map[string]events.TableWrites {
	got := map[string]events.TableWrites{}
	if r != nil {
		for _, w := range r.Writes {
			got[w.Table] = w
		}
	}
	return got
}

// A rollback through the snapshot of a data migration (an up file that
// updates every row of users, with no down file) leaves the migration's own
// writes out of its count only when the run was fenced (PostgreSQL): no
// other writer could write while it ran. Fenced, with no application write
// it restores without restore_anyway and reports 0 rows; with some after
// the run, it is refused with theirs alone, also when they hit the table the
// migration rewrote, and restores with restore_anyway; across two fenced
// runs the writes between the runs and after the second count, the runs'
// own do not. Unfenced (every driver), the run's writes are counted with
// the applications', flagged, and the rollback is refused: an application
// row committed while the run ran is counted, never dropped unreported. A
// run without a mark (it stopped midway) counts its own writes and says so.
func TestSnapshotRollbackLeavesOutTheMigrationsOwnWrites(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.driver, func(t *testing.T) {
			drivers := tg.drivers(t)
			h := start(t, migrator.Config{Drivers: drivers})
			src := tg.dataSource(t, tg.rename("-v2"), tg.rename("-v3"))
			fresh := func(t *testing.T) string {
				loc := tg.prepare(t, drivers[tg.driver], 200)
				tg.waitStats(t, loc, "audit_trail", 200, 0, 0)
				tg.waitStats(t, loc, "users", 200, 0, 0)
				return loc
			}
			migrateWith := func(t *testing.T, h *harness, loc string, to uint, fence string) string {
				t.Helper()
				fin, _ := h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: src, TargetVersion: to, Fence: fence}))
				if fin.Type() != events.TypeMigrationCompleted {
					t.Fatalf("migrate to %d (fence %q): %s %s", to, fence, fin.Type(), fin.Data())
				}
				return as[events.MigrationCompleted](t, fin).SnapshotID
			}
			// fenced: the PostgreSQL fence keeps the other roles out; the
			// test's sessions are the migrator's role, so they write after
			// the run as an application would.
			fenced := func(t *testing.T, loc string, to uint) string {
				t.Helper()
				return migrateWith(t, h, loc, to, "connect")
			}
			rollback := func(t *testing.T, loc, snap string, anyway bool) events.Event {
				t.Helper()
				fin, _ := h.final(h.request(events.MigrationRollbackRequested{Driver: tg.driver, Database: loc, Source: src, ToVersion: 1, SnapshotID: snap, RestoreAnyway: anyway}))
				return fin
			}
			renamed := func(t *testing.T, loc string) int {
				t.Helper()
				var n int
				if err := tg.open(t, loc).QueryRow(`SELECT COUNT(*) FROM users WHERE name LIKE '%-v%'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			// refusedWithOwn checks a rollback refused with the run's own
			// writes counted and flagged, plus the applications' in want.
			refusedWithOwn := func(t *testing.T, fin events.Event, snap string, want map[string]events.TableWrites) {
				t.Helper()
				var rows int64
				for _, w := range want {
					rows += w.Inserts + w.Updates + w.Deletes
				}
				refused := as[events.MigrationFailed](t, fin)
				if got := writesOf(refused.Restore); fin.Type() != events.TypeMigrationFailed || refused.Restore == nil || refused.Restore.Restored ||
					!refused.Restore.MigrationWritesIncluded || !maps.Equal(got, want) ||
					!strings.Contains(refused.Error, fmt.Sprintf("%d rows written after snapshot %s", rows, snap)) ||
					!strings.Contains(refused.Error, "the migration's own writes included") ||
					!strings.Contains(refused.Error, "restoring anyway also loses whatever applications wrote") {
					t.Fatalf("rollback without restore_anyway = %s %s\nwant refused, the run's own writes counted and flagged: %v", fin.Type(), fin.Data(), want)
				}
			}

			// onPostgres runs a fenced case: only PostgreSQL fences writers
			// (the other drivers refuse a fence, see "fence refused").
			onPostgres := func(name string, f func(t *testing.T)) {
				if tg.driver == "postgres" {
					t.Run(name, f)
				}
			}

			t.Run("unfenced run", func(t *testing.T) {
				loc := fresh(t)
				snap := migrateWith(t, h, loc, 2, "")
				tg.waitStats(t, loc, "users", 200, 200, 0)
				want := map[string]events.TableWrites{tg.table("users"): {Table: tg.table("users"), Updates: 200}}
				refusedWithOwn(t, rollback(t, loc, snap, false), snap, want)
				if n := renamed(t, loc); n != 200 {
					t.Errorf("after the refused rollback %d users renamed, want 200", n)
				}
				fin := rollback(t, loc, snap, true)
				rb := as[events.MigrationRollbackCompleted](t, fin)
				if fin.Type() != events.TypeMigrationRollbackCompleted || rb.RowsWrittenAfterSnapshot == nil || *rb.RowsWrittenAfterSnapshot != 200 ||
					rb.Restore == nil || !rb.Restore.MigrationWritesIncluded {
					t.Fatalf("rollback with restore_anyway = %s %s\nwant restored, 200 rows counted, flagged", fin.Type(), fin.Data())
				}
				if n := renamed(t, loc); n != 0 {
					t.Errorf("after the rollback %d users renamed, want 0", n)
				}
			})

			t.Run("application commits while an unfenced run runs", func(t *testing.T) {
				loc := fresh(t)
				app := tg.open(t, loc)
				var during error
				drv := &afterSnapshot{Driver: drivers[tg.driver], beforeUp: func() {
					_, during = app.Exec(`INSERT INTO audit_trail (body) VALUES ('during the run')`)
				}}
				hd := start(t, migrator.Config{Drivers: map[string]migrator.Driver{tg.driver: drv}})
				snap := migrateWith(t, hd, loc, 2, "")
				if during != nil {
					t.Fatalf("the application's insert during the run: %v", during)
				}
				tg.waitStats(t, loc, "audit_trail", 201, 0, 0)
				tg.waitStats(t, loc, "users", 200, 200, 0)
				// Its row is counted: a rollback without restore_anyway is
				// refused and the row stays.
				want := map[string]events.TableWrites{
					tg.table("audit_trail"): {Table: tg.table("audit_trail"), Inserts: 1},
					tg.table("users"):       {Table: tg.table("users"), Updates: 200},
				}
				refusedWithOwn(t, rollback(t, loc, snap, false), snap, want)
				var n int
				if err := tg.open(t, loc).QueryRow(`SELECT COUNT(*) FROM audit_trail WHERE body = 'during the run'`).Scan(&n); err != nil || n != 1 {
					t.Errorf("after the refused rollback the row written during the run: %d (%v), want kept", n, err)
				}
			})

			if tg.driver != "postgres" {
				// Only PostgreSQL fences; the run without a mark below is
				// the drivers' own (MarkRun, WrittenAfter).
				t.Run("fence refused", func(t *testing.T) {
					loc := fresh(t)
					fin, _ := h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: src, TargetVersion: 2, Fence: "connect"}))
					if f := as[events.MigrationFailed](t, fin); fin.Type() != events.TypeMigrationFailed || !strings.Contains(f.Error, "cannot fence") {
						t.Fatalf("fenced run = %s %s, want refused: this driver cannot fence", fin.Type(), fin.Data())
					}
				})
			}

			onPostgres("fenced run, no application write", func(t *testing.T) {
				loc := fresh(t)
				snap := fenced(t, loc, 2)
				if n := renamed(t, loc); n != 200 {
					t.Fatalf("after the data migration %d users renamed, want 200", n)
				}
				fin := rollback(t, loc, snap, false)
				if fin.Type() != events.TypeMigrationRollbackCompleted {
					t.Fatalf("rollback without restore_anyway = %s %s\nwant restored: the only writes after the snapshot are the fenced migration's own", fin.Type(), fin.Data())
				}
				rb := as[events.MigrationRollbackCompleted](t, fin)
				if rb.Path != migrator.PathSnapshot || rb.RowsWrittenAfterSnapshot == nil || *rb.RowsWrittenAfterSnapshot != 0 || rb.Restore == nil ||
					len(rb.Restore.Writes) != 0 || rb.Restore.MigrationWritesIncluded || !strings.Contains(rb.Restore.Lost, "nothing counted: no row written by applications after snapshot "+snap) {
					t.Errorf("rollback = %s\nwant path snapshot, 0 rows written by applications", fin.Data())
				}
				if n := renamed(t, loc); n != 0 {
					t.Errorf("after the rollback %d users renamed, want 0", n)
				}
			})

			onPostgres("fenced run, application writes after it", func(t *testing.T) {
				loc := fresh(t)
				snap := fenced(t, loc, 2)
				db := tg.open(t, loc)
				for i := 0; i < 3; i++ {
					mustExec(t, db, `INSERT INTO audit_trail (body) VALUES ('after the run')`)
				}
				mustExec(t, db, `UPDATE users SET name = 'edited' WHERE id <= 2`)
				db.Close()
				tg.waitStats(t, loc, "audit_trail", 203, 0, 0)
				tg.waitStats(t, loc, "users", 200, 202, 0)
				want := map[string]events.TableWrites{
					tg.table("audit_trail"): {Table: tg.table("audit_trail"), Inserts: 3},
					tg.table("users"):       {Table: tg.table("users"), Updates: 2},
				}
				fin := rollback(t, loc, snap, false)
				refused := as[events.MigrationFailed](t, fin)
				if got := writesOf(refused.Restore); fin.Type() != events.TypeMigrationFailed || refused.Restore == nil || refused.Restore.Restored ||
					refused.Restore.MigrationWritesIncluded || !maps.Equal(got, want) ||
					!strings.Contains(refused.Error, "5 rows written by applications after snapshot "+snap) {
					t.Fatalf("rollback without restore_anyway = %s %s\nwant refused with the applications' writes alone: %v", fin.Type(), fin.Data(), want)
				}
				fin = rollback(t, loc, snap, true)
				rb := as[events.MigrationRollbackCompleted](t, fin)
				if fin.Type() != events.TypeMigrationRollbackCompleted || rb.RowsWrittenAfterSnapshot == nil || *rb.RowsWrittenAfterSnapshot != 5 || !maps.Equal(writesOf(rb.Restore), want) {
					t.Fatalf("rollback with restore_anyway = %s %s\nwant restored, 5 rows lost: %v", fin.Type(), fin.Data(), want)
				}
				if n := renamed(t, loc); n != 0 {
					t.Errorf("after the rollback %d users renamed, want 0", n)
				}
			})

			onPostgres("two fenced runs", func(t *testing.T) {
				loc := fresh(t)
				first := fenced(t, loc, 2)
				db := tg.open(t, loc)
				for i := 0; i < 4; i++ {
					mustExec(t, db, `INSERT INTO audit_trail (body) VALUES ('between the runs')`)
				}
				db.Close()
				tg.waitStats(t, loc, "audit_trail", 204, 0, 0)
				fenced(t, loc, 3)
				db = tg.open(t, loc)
				mustExec(t, db, `UPDATE audit_trail SET body = 'after the second run' WHERE id = 1`)
				db.Close()
				tg.waitStats(t, loc, "audit_trail", 204, 1, 0)
				want := map[string]events.TableWrites{tg.table("audit_trail"): {Table: tg.table("audit_trail"), Inserts: 4, Updates: 1}}
				fin := rollback(t, loc, first, false)
				refused := as[events.MigrationFailed](t, fin)
				if got := writesOf(refused.Restore); fin.Type() != events.TypeMigrationFailed || refused.Restore == nil || refused.Restore.MigrationWritesIncluded || !maps.Equal(got, want) {
					t.Fatalf("rollback through the first run's snapshot = %s %s\nwant refused with the applications' writes between and after the runs alone: %v", fin.Type(), fin.Data(), want)
				}
			})

			t.Run("run without a mark", func(t *testing.T) {
				loc := fresh(t)
				d, err := drivers[tg.driver].Open(t.Context(), loc, src)
				if err != nil {
					t.Fatal(err)
				}
				snap, err := d.Snapshot(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				// A run that stopped midway: recorded, its write made, no mark.
				if err := d.RecordRun(t.Context(), &migrator.Run{ID: "stopped", Snapshot: snap.ID, From: 1, Target: 2, Started: snap.Time}); err != nil {
					t.Fatal(err)
				}
				mustExec(t, tg.open(t, loc), tg.rename("-v2"))
				tg.waitStats(t, loc, "users", 200, 200, 0)
				loss, err := d.WrittenAfter(t.Context(), snap.ID)
				if err != nil || !loss.OwnIncluded || loss.Rows != 200 {
					t.Errorf("WrittenAfter = %+v, %v; want the run's 200 updates counted, and OwnIncluded", loss, err)
				}
				// Once marked, the same run's writes are its own.
				if err := d.MarkRun(t.Context()); err != nil {
					t.Fatal(err)
				}
				loss, err = d.WrittenAfter(t.Context(), snap.ID)
				if err != nil || loss.OwnIncluded || loss.Rows != 0 {
					t.Errorf("WrittenAfter after MarkRun = %+v, %v; want nothing counted", loss, err)
				}
			})
		})
	}
}
