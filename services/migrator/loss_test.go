package migrator_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/migrator"
)

// afterSnapshot is a driver whose databases run fn once, right after their
// first snapshot: the application committing writes while a migration runs.
// With beforeUp set instead, they run it once before their first Up, the
// run recorded (RecordRun) and started.
type afterSnapshot struct {
	migrator.Driver
	once     sync.Once
	fn       func()
	beforeUp func()
}

func (a *afterSnapshot) Open(ctx context.Context, location, source string) (migrator.Database, error) {
	db, err := a.Driver.Open(ctx, location, source)
	if err != nil {
		return nil, err
	}
	return &afterSnapshotDB{Database: db, a: a}, nil
}

type afterSnapshotDB struct {
	migrator.Database
	a *afterSnapshot
}

func (d *afterSnapshotDB) Snapshot(ctx context.Context) (migrator.Snapshot, error) {
	s, err := d.Database.Snapshot(ctx)
	if err == nil && d.a.fn != nil {
		d.a.once.Do(d.a.fn)
	}
	return s, err
}

func (d *afterSnapshotDB) Up(ctx context.Context, target uint) error {
	if d.a.beforeUp != nil {
		d.a.once.Do(d.a.beforeUp)
	}
	return d.Database.Up(ctx, target)
}

// A run that fails after the application committed inserts, updates and
// deletes does not restore the snapshot over them: the database keeps them
// (clean at the last version applied when the failed file rolled back,
// paused dirty when it did not) and migration.failed carries the counts per
// table and the choices.
func TestFailedRunKeepsConcurrentWrites(t *testing.T) {
	type tcase struct {
		name, source string
		state        string // prefix of the state
		version      uint
		choices      string // prefix of the first choice
	}
	cases := map[string][]tcase{
		"sqlite": {
			{"failed file rolled back", "testdata/failing_nodown", "clean at version 2, kept: not restored from snapshot ", 2, "keep: nothing to do"},
			{"failed file committed part of itself", "testdata/failing_notx", "dirty at version 3, paused: not restored from snapshot ", 3, "restore anyway"},
		},
		"postgres": {
			{"failed file rolled back", "testdata/pg/failing_nodown", "clean at version 2, kept: not restored from snapshot ", 2, "keep: nothing to do"},
			{"create index concurrently", "testdata/pg/failing_concurrently", "dirty at version 3, paused: not restored from snapshot ", 3, "restore anyway"},
		},
		"mysql": {
			{"failed file rolled back", "testdata/mysql/failing_nodown", "clean at version 2, kept: not restored from snapshot ", 2, "keep: nothing to do"},
			{"DDL committed before the failure", "testdata/mysql/failing", "dirty at version 3, paused: not restored from snapshot ", 3, "restore anyway"},
		},
	}
	for _, tg := range targets() {
		t.Run(tg.driver, func(t *testing.T) {
			inner := tg.drivers(t)[tg.driver]
			for _, tc := range cases[tg.driver] {
				t.Run(tc.name, func(t *testing.T) {
					loc := tg.prepare(t, inner, 200)
					// The seed's counters are published before the run (a
					// pg_dump snapshot reads them without waiting for other
					// sessions to end; see migrator.Loss).
					tg.waitStats(t, loc, "audit_trail", 200, 0, 0)
					drv := &afterSnapshot{Driver: inner, fn: func() {
						db := tg.open(t, loc)
						for i := 0; i < 38; i++ {
							mustExec(t, db, `INSERT INTO audit_trail (body) VALUES ('committed during the run')`)
						}
						mustExec(t, db, `UPDATE audit_trail SET body = 'edited during the run' WHERE id <= 5`)
						mustExec(t, db, `DELETE FROM audit_trail WHERE id > 5 AND id <= 8`)
						db.Close()
						tg.waitStats(t, loc, "audit_trail", 200+38, 5, 3)
					}}
					h := start(t, migrator.Config{Drivers: map[string]migrator.Driver{tg.driver: drv}})
					fin, all := h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: tc.source}))
					if fin.Type() != events.TypeMigrationFailed {
						t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
					}
					started := as[events.MigrationStarted](t, all[0])
					failed := as[events.MigrationFailed](t, fin)
					if !strings.HasPrefix(failed.State, tc.state+started.SnapshotID) || failed.Version != tc.version ||
						len(failed.Choices) != 2 || !strings.HasPrefix(failed.Choices[0], tc.choices) {
						t.Errorf("failed = %+v\nwant state %q..., version %d, two choices, the first %q...", failed, tc.state+started.SnapshotID, tc.version, tc.choices)
					}
					table := "audit_trail"
					if tg.driver == "postgres" {
						table = "public.audit_trail"
					}
					r := failed.Restore
					var got events.TableWrites
					if r != nil {
						for _, w := range r.Writes {
							if w.Table == table {
								got = w
							}
						}
					}
					if want := (events.TableWrites{Table: table, Inserts: 38, Updates: 5, Deletes: 3}); r == nil || r.Restored || r.SnapshotID != started.SnapshotID || r.Version != 1 || got != want {
						t.Errorf("failed.restore = %+v, want snapshot %s (version 1) not restored, with %+v", r, started.SnapshotID, want)
					}
					// The database kept every write.
					db := tg.open(t, loc)
					var n, edited int
					if err := db.QueryRow(`SELECT COUNT(*), COUNT(CASE WHEN body = 'edited during the run' THEN 1 END) FROM audit_trail`).Scan(&n, &edited); err != nil {
						t.Fatal(err)
					}
					if n != 200+38-3 || edited != 5 {
						t.Errorf("audit_trail holds %d rows, %d edited; want %d and 5: the writes of the run are kept", n, edited, 200+38-3)
					}
					v, dirty, _ := tg.versionOf(t, loc)
					if v != int64(tc.version) || dirty != strings.HasPrefix(tc.state, "dirty") {
						t.Errorf("database at version %d dirty %v, want the state %q", v, dirty, tc.state)
					}
				})
			}
		})
	}
}

// The case: an operator rolls an upgrade back (through its
// snapshot, which keeps the replaced state as a snapshot of its own), the
// application writes, then the database is left dirty. Recover must not
// bring back the undone upgrade: without a run of the migrator recorded as
// having left it dirty it refuses and changes nothing; with one, it restores
// that run's snapshot, which holds the writes.
func TestRecoverAfterRollbackDoesNotResurrectTheUpgrade(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.driver, func(t *testing.T) {
			drivers := tg.drivers(t)
			h := start(t, migrator.Config{Drivers: drivers})
			loc := tg.prepare(t, drivers[tg.driver], 100)
			fin, _ := h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: tg.ok}))
			if fin.Type() != events.TypeMigrationCompleted {
				t.Fatalf("upgrade answer %s: %s", fin.Type(), fin.Data())
			}
			up := as[events.MigrationCompleted](t, fin)
			fin, _ = h.final(h.request(events.MigrationRollbackRequested{Driver: tg.driver, Database: loc, ToVersion: 1, SnapshotID: up.SnapshotID, RestoreAnyway: true}))
			if fin.Type() != events.TypeMigrationRollbackCompleted {
				t.Fatalf("rollback answer %s: %s", fin.Type(), fin.Data())
			}
			db := tg.open(t, loc)
			for i := 0; i < 100; i++ {
				mustExec(t, db, `INSERT INTO audit_trail (body) VALUES ('after the rollback')`)
			}
			db.Close()
			count := func() int {
				var n int
				if err := tg.open(t, loc).QueryRow(`SELECT COUNT(*) FROM audit_trail WHERE body = 'after the rollback'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			dirtyAt2 := func() {
				mustExec(t, tg.open(t, loc), `UPDATE schema_migrations SET version = 2, dirty = true`)
			}

			// Left dirty outside the migrator: refused, nothing changed.
			dirtyAt2()
			fin, _ = h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: tg.ok, Recover: true, RestoreAnyway: true}))
			failed := as[events.MigrationFailed](t, fin)
			if fin.Type() != events.TypeMigrationFailed || !strings.Contains(failed.Error, "records no migrator run that left it dirty at version 2") || failed.State != "dirty at version 2, unchanged" {
				t.Fatalf("recover = %s %+v, want refused: no run recorded", fin.Type(), failed)
			}
			if v, dirty, _ := tg.versionOf(t, loc); v != 2 || !dirty || count() != 100 {
				t.Fatalf("after the refused recover: version %d dirty %v, %d rows written after the rollback; want dirty 2 and all 100", v, dirty, count())
			}

			// Left dirty by a run of the migrator that stopped midway: its
			// snapshot (version 1, with the 100 rows) comes back.
			mustExec(t, tg.open(t, loc), `UPDATE schema_migrations SET version = 1, dirty = false`)
			d, err := drivers[tg.driver].Open(t.Context(), loc, "")
			if err != nil {
				t.Fatal(err)
			}
			snap, err := d.Snapshot(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.RecordRun(t.Context(), &migrator.Run{ID: "stopped", Snapshot: snap.ID, From: 1, Target: 2, Started: time.Now()}); err != nil {
				t.Fatal(err)
			}
			dirtyAt2()
			fin, _ = h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: tg.ok, TargetVersion: 1, Recover: true}))
			if fin.Type() != events.TypeMigrationCompleted {
				t.Fatalf("recover answer %s: %s", fin.Type(), fin.Data())
			}
			done := as[events.MigrationCompleted](t, fin)
			if r := done.Recovered; r == nil || r.SnapshotID != snap.ID || r.Version != 1 || !r.Restored || done.ToVersion != 1 {
				t.Errorf("recovered = %+v %+v, want snapshot %s (version 1) restored", done, r, snap.ID)
			}
			if v, dirty, _ := tg.versionOf(t, loc); v != 1 || dirty || count() != 100 {
				t.Errorf("after recover: version %d dirty %v, %d rows written after the rollback; want clean 1 and all 100", v, dirty, count())
			}
		})
	}
}

// Fence passes a fence request through to the wrapped database.
func (d *afterSnapshotDB) Fence(ctx context.Context, mode string) (func(context.Context) error, error) {
	f, ok := d.Database.(interface {
		Fence(context.Context, string) (func(context.Context) error, error)
	})
	if !ok {
		return nil, errors.New("this database cannot fence writers")
	}
	return f.Fence(ctx, mode)
}
