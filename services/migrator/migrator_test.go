package migrator_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/sqlite"
)

const rows = 3000

var eventually = natstest.Eventually

// countingDriver counts the databases the migrator opens: one per request it
// really handles.
type countingDriver struct {
	migrator.Driver
	opens atomic.Int32
}

func (c *countingDriver) Open(ctx context.Context, location, source string) (migrator.Database, error) {
	c.opens.Add(1)
	return c.Driver.Open(ctx, location, source)
}

// harness is a NATS server, a running migrator and the status events it published.
type harness struct {
	t      *testing.T
	srv    *natstest.Server
	driver *countingDriver

	mu       sync.Mutex
	statuses []events.Event
}

func start(t *testing.T, cfg migrator.Config) *harness {
	t.Helper()
	h := &harness{t: t, srv: natstest.Start(t), driver: &countingDriver{Driver: sqlite.Driver{}}}
	sub, err := h.srv.Conn.Subscribe(events.SubjectMigrationStatus, func(m *nats.Msg) {
		e, err := events.Decode(m.Header, m.Data)
		if err != nil {
			t.Errorf("status event does not decode: %v\n%s", err, m.Data)
			return
		}
		h.mu.Lock()
		h.statuses = append(h.statuses, e)
		h.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Drivers == nil {
		cfg.Drivers = map[string]migrator.Driver{"sqlite": h.driver}
	}
	m, err := migrator.New(cfg, h.srv.JS)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, m, 10*time.Second)
	return h
}

// request publishes a command event for upgrade u1.
func (h *harness) request(d events.Data) events.Event {
	h.t.Helper()
	e := events.MustNew(events.Source("planner", ""), d, events.WithUpgrade("u1"))
	if err := events.NewPublisher(h.srv.JS).Publish(h.t.Context(), e); err != nil {
		h.t.Fatal(err)
	}
	return e
}

// answers returns the status events caused by req.
func (h *harness) answers(req events.Event) []events.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []events.Event
	for _, e := range h.statuses {
		if events.CausationID(e) == req.ID() {
			out = append(out, e)
		}
	}
	return out
}

// final waits for the final answer to req and returns it with every answer.
// The wait is a guard against a hang, not a measure: a command migration
// (a container run, a snapshot, a restore) on a loaded 2-core machine can
// take well over 20 s.
func (h *harness) final(req events.Event) (events.Event, []events.Event) {
	h.t.Helper()
	var fin events.Event
	eventually(h.t, 2*time.Minute, "the answer to "+req.Type(), func() bool {
		for _, e := range h.answers(req) {
			switch e.Type() {
			case events.TypeMigrationCompleted, events.TypeMigrationFailed, events.TypeMigrationRollbackCompleted:
				fin = e
				return true
			}
		}
		return false
	})
	return fin, h.answers(req)
}

// settled waits until the migrator's consumer has settled every command.
func (h *harness) settled() jetstream.ConsumerInfo {
	h.t.Helper()
	return *natstest.Settled(h.t, h.srv.JS, migrator.Durable, 20*time.Second)
}

func as[T any](t *testing.T, e events.Event) T {
	t.Helper()
	v, err := events.DataAs[T](e)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// seed creates a database at version 1 of testdata/ok holding rows users.
func seed(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Driver{}.Open(t.Context(), path, "testdata/ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Up(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	exec(t, path, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO users (name) SELECT 'user' || i FROM n`, rows)
	return path
}

func exec(t *testing.T, path, q string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// state reads a database's version, dirty flag, user count and tables.
func state(t *testing.T, path string) (version uint, dirty bool, users int, tables string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT version, dirty FROM schema_migrations`).Scan(&version, &dirty); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT COUNT(*) FROM users`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	return version, dirty, users, tables
}

func columns(t *testing.T, path, table string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cols string
	if err := db.QueryRow(`SELECT group_concat(name, ',') FROM pragma_table_info(?)`, table).Scan(&cols); err != nil {
		t.Fatal(err)
	}
	return cols
}

func TestMigrateUpWithSnapshot(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	req := h.request(events.MigrationRequested{Service: "app", Driver: "sqlite", Database: path, Source: "testdata/ok"})
	fin, all := h.final(req)
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	done := as[events.MigrationCompleted](t, fin)
	if done.FromVersion != 1 || done.ToVersion != 4 || done.Database != path || done.SnapshotID == "" {
		t.Errorf("completed = %+v, want from 1 to 4 with a snapshot", done)
	}
	if len(all) != 2 || all[0].Type() != events.TypeMigrationStarted {
		t.Fatalf("answers = %v, want started then completed", all)
	}
	started := as[events.MigrationStarted](t, all[0])
	if started.FromVersion != 1 || started.SnapshotID != done.SnapshotID {
		t.Errorf("started = %+v, want from 1 and the completed event's snapshot", started)
	}
	if events.UpgradeID(fin) != "u1" || events.UpgradeID(all[0]) != "u1" {
		t.Errorf("status events do not carry the request's upgrade id")
	}

	snapPath := filepath.Join(filepath.Dir(path), sqlite.SnapshotDir, done.SnapshotID)
	if v, dirty, users, _ := state(t, snapPath); v != 1 || dirty || users != rows {
		t.Errorf("snapshot %s: version %d dirty %v users %d, want the pre-upgrade database", snapPath, v, dirty, users)
	}
	if v, dirty, users, tables := state(t, path); v != 4 || dirty || users != rows || tables != "cutover_migrations,orders,schema_migrations,users" {
		t.Errorf("database: version %d dirty %v users %d tables %s", v, dirty, users, tables)
	}
}

func TestFailingMigrationGoesBackDown(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	req := h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/failing"})
	fin, all := h.final(req)
	if fin.Type() != events.TypeMigrationFailed {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	failed := as[events.MigrationFailed](t, fin)
	started := as[events.MigrationStarted](t, all[0])
	if failed.File != "0003_broken.up.sql" || !strings.Contains(failed.Error, "no such table: missing_table") || failed.Version != 1 {
		t.Errorf("failed = %+v, want file 0003_broken.up.sql, the SQL error, version 1", failed)
	}
	if started.SnapshotID == "" {
		t.Errorf("started = %+v, want a snapshot", started)
	}
	if want := "clean at version 1 (down migrations)"; failed.State != want {
		t.Errorf("state = %q, want %q", failed.State, want)
	}
	// Back at the pre-upgrade version: 0002's column is gone, 0003's table too, every row is there.
	if v, dirty, users, tables := state(t, path); v != 1 || dirty || users != rows || tables != "cutover_migrations,schema_migrations,users" {
		t.Errorf("database: version %d dirty %v users %d tables %s, want clean 1 with %d users", v, dirty, users, tables, rows)
	}
	if cols := columns(t, path, "users"); cols != "id,name" {
		t.Errorf("users columns %s, want id,name (0002 undone)", cols)
	}
}

// When the first file of the run fails and rolls back, there is nothing to
// migrate down: the version is only marked clean again.
func TestFailingFirstMigrationOnlyClearsDirty(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	if fin, _ := h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/failing", TargetVersion: 2})); fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	fin, _ := h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/failing"}))
	failed := as[events.MigrationFailed](t, fin)
	if fin.Type() != events.TypeMigrationFailed || failed.File != "0003_broken.up.sql" || failed.Version != 2 ||
		failed.State != "clean at version 2 (the failed file rolled back; no other migration ran)" {
		t.Errorf("answer %s: %+v", fin.Type(), failed)
	}
	if v, dirty, users, tables := state(t, path); v != 2 || dirty || users != rows || tables != "cutover_migrations,schema_migrations,users" {
		t.Errorf("database: version %d dirty %v users %d tables %s, want clean 2 with %d users", v, dirty, users, tables, rows)
	}
}

func TestRollbackThroughDownFiles(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	up, _ := h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok"}))
	if up.Type() != events.TypeMigrationCompleted {
		t.Fatalf("migration answer %s: %s", up.Type(), up.Data())
	}
	fin, _ := h.final(h.request(events.MigrationRollbackRequested{Driver: "sqlite", Database: path, Source: "testdata/ok", ToVersion: 1,
		SnapshotID: as[events.MigrationCompleted](t, up).SnapshotID}))
	if fin.Type() != events.TypeMigrationRollbackCompleted {
		t.Fatalf("rollback answer %s: %s", fin.Type(), fin.Data())
	}
	rb := as[events.MigrationRollbackCompleted](t, fin)
	if rb.Path != migrator.PathDown || rb.FromVersion != 4 || rb.ToVersion != 1 || rb.SnapshotTime != nil {
		t.Errorf("rollback = %+v, want down from 4 to 1", rb)
	}
	if v, dirty, users, tables := state(t, path); v != 1 || dirty || users != rows || tables != "cutover_migrations,schema_migrations,users" {
		t.Errorf("database: version %d dirty %v users %d tables %s", v, dirty, users, tables)
	}
	if cols := columns(t, path, "users"); cols != "id,name" {
		t.Errorf("users columns %s, want id,name", cols)
	}
}

func TestRollbackThroughSnapshotWhenDownFileMissing(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	up, _ := h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/nodown"}))
	if up.Type() != events.TypeMigrationCompleted {
		t.Fatalf("migration answer %s: %s", up.Type(), up.Data())
	}
	done := as[events.MigrationCompleted](t, up)
	exec(t, path, `INSERT INTO orders (user_id, total) VALUES (1, 42)`) // written after the snapshot: lost by the restore

	// Without a snapshot id, the missing down file is named and nothing changes.
	fin, _ := h.final(h.request(events.MigrationRollbackRequested{Driver: "sqlite", Database: path, Source: "testdata/nodown", ToVersion: 1}))
	failed := as[events.MigrationFailed](t, fin)
	if fin.Type() != events.TypeMigrationFailed || !strings.Contains(failed.Error, "0003_orders.down.sql") || failed.Version != 3 {
		t.Errorf("rollback without snapshot: %s %+v, want failed naming 0003_orders.down.sql at version 3", fin.Type(), failed)
	}

	fin, _ = h.final(h.request(events.MigrationRollbackRequested{Driver: "sqlite", Database: path, Source: "testdata/nodown", ToVersion: 1, SnapshotID: done.SnapshotID, RestoreAnyway: true}))
	if fin.Type() != events.TypeMigrationRollbackCompleted {
		t.Fatalf("rollback answer %s: %s", fin.Type(), fin.Data())
	}
	rb := as[events.MigrationRollbackCompleted](t, fin)
	if rb.Path != migrator.PathSnapshot || rb.FromVersion != 3 || rb.ToVersion != 1 || rb.SnapshotTime == nil || time.Since(*rb.SnapshotTime) > time.Minute {
		t.Errorf("rollback = %+v, want snapshot path from 3 to 1 with the snapshot's time", rb)
	}
	if v, dirty, users, tables := state(t, path); v != 1 || dirty || users != rows || tables != "cutover_migrations,schema_migrations,users" {
		t.Errorf("database: version %d dirty %v users %d tables %s", v, dirty, users, tables)
	}
	// The state before the restore (with the lost order) is kept as a snapshot
	// of its own. (Snapshot files end in their timestamp's Z; their checksum
	// side files do not.)
	snaps, err := filepath.Glob(filepath.Join(filepath.Dir(path), sqlite.SnapshotDir, "*.snap-*Z"))
	if err != nil || len(snaps) != 2 {
		t.Errorf("snapshots: %v, %v; want the pre-upgrade one and the pre-rollback one", snaps, err)
	}
}

func TestRedeliveredRequestHandledOnce(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	req := h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok", TargetVersion: 2})
	if fin, _ := h.final(req); fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	redeliver := func() {
		t.Helper()
		m, err := events.Encode(req)
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Set(nats.MsgIdHdr, req.ID()+"-"+time.Now().Format(time.RFC3339Nano)) // past JetStream's dedup
		if _, err := h.srv.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	redeliver()
	h.settled()

	// The migrator also remembers the outcome: a redelivery that slipped past
	// the processed record (a crash before the ack) republishes it instead of
	// migrating again.
	kv, err := h.srv.JS.KeyValue(t.Context(), events.BucketProcessed)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(t.Context(), migrator.Durable+"."+req.ID()); err != nil {
		t.Fatal(err)
	}
	redeliver()
	info := h.settled()

	if info.Delivered.Stream < 3 {
		t.Fatalf("consumer saw %d messages, want the request three times", info.Delivered.Stream)
	}
	if n := h.driver.opens.Load(); n != 1 {
		t.Errorf("the migrator opened the database %d times, want once", n)
	}
	st, err := h.srv.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Info(t.Context(), jetstream.WithSubjectFilter(events.SubjectMigrationStatus))
	if err != nil {
		t.Fatal(err)
	}
	if n := si.State.Subjects[events.SubjectMigrationStatus]; n != 2 {
		t.Errorf("%d status events in the stream, want 2 (started, completed)", n)
	}
	if v, dirty, _, _ := state(t, path); v != 2 || dirty {
		t.Errorf("database at version %d dirty %v, want clean 2", v, dirty)
	}
}

func TestUnsupportedRequests(t *testing.T) {
	h := start(t, migrator.Config{})
	cases := []struct {
		name string
		req  events.Data
		want string
	}{
		{"postgres", events.MigrationRequested{Driver: "postgres", Database: "postgres://app:secret@db:5432/app", Source: "/migrations"}, `driver "postgres" is not wired in this migrator`},
		{"postgres rollback", events.MigrationRollbackRequested{Driver: "postgres", Database: "postgres://app:secret@db:5432/app", ToVersion: 3}, `driver "postgres" is not wired in this migrator`},
		{"image source without fetcher", events.MigrationRequested{Driver: "sqlite", Database: "/nowhere.db", Source: "image:registry.example/app:2"}, "this migrator cannot read images; wire Config.Images"},
		{"missing database", events.MigrationRequested{Driver: "sqlite", Database: filepath.Join(t.TempDir(), "typo.db"), Source: "testdata/ok"}, "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fin, all := h.final(h.request(c.req))
			failed := as[events.MigrationFailed](t, fin)
			if fin.Type() != events.TypeMigrationFailed || !strings.Contains(failed.Error, c.want) || len(all) != 1 {
				t.Errorf("answers %v, final %+v; want only a migration.failed with %q", all, failed, c.want)
			}
			if strings.Contains(failed.Database, "secret") {
				t.Errorf("database %q carries the password", failed.Database)
			}
		})
	}
}

func TestDirtyDatabaseRefusedThenRecovered(t *testing.T) {
	h := start(t, migrator.Config{})
	path := seed(t)
	// A first migration leaves a snapshot at version 1; then simulate a crash midway through version 2.
	fin, _ := h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok", TargetVersion: 2}))
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	first := as[events.MigrationCompleted](t, fin)
	exec(t, path, `UPDATE schema_migrations SET dirty = 1`)

	fin, _ = h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok"}))
	failed := as[events.MigrationFailed](t, fin)
	if fin.Type() != events.TypeMigrationFailed || failed.Version != 2 || !strings.Contains(failed.State, "dirty at version 2") || !strings.Contains(failed.State, "recover") {
		t.Fatalf("dirty database: %s %+v, want failed, dirty at version 2, pointing at recover", fin.Type(), failed)
	}

	// Dirty, but no run of the migrator left it so: recover refuses and
	// names the snapshots it found.
	fin, _ = h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok", Recover: true}))
	failed = as[events.MigrationFailed](t, fin)
	if fin.Type() != events.TypeMigrationFailed || !strings.Contains(failed.Error, "records no migrator run that left it dirty at version 2") ||
		!strings.Contains(failed.Error, first.SnapshotID) || failed.State != "dirty at version 2, unchanged" {
		t.Fatalf("recover without a recorded run: %s %+v, want refused naming %s", fin.Type(), failed, first.SnapshotID)
	}

	// What a run that crashed midway leaves: its row in the ledger, naming
	// the snapshot it took.
	db, err := sqlite.Driver{}.Open(t.Context(), path, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RecordRun(t.Context(), &migrator.Run{ID: "crashed", Snapshot: first.SnapshotID, From: 1, Target: 2, Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	fin, _ = h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok", Recover: true}))
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("recover answer %s: %s", fin.Type(), fin.Data())
	}
	done := as[events.MigrationCompleted](t, fin)
	if r := done.Recovered; done.FromVersion != 1 || done.ToVersion != 4 || r == nil || r.SnapshotID != first.SnapshotID || r.Version != 1 || !r.Restored || !strings.HasPrefix(r.Lost, "nothing counted") {
		t.Errorf("recovered = %+v (%+v), want from 1 (the run's snapshot %s, nothing lost) to 4", done, done.Recovered, first.SnapshotID)
	}
	if v, dirty, users, _ := state(t, path); v != 4 || dirty || users != rows {
		t.Errorf("database: version %d dirty %v users %d", v, dirty, users)
	}
}

func TestLockedDatabaseIsRetried(t *testing.T) {
	cases := []struct {
		name    string
		cfg     migrator.Config
		release bool // the test releases the lock; otherwise it goes stale
	}{
		{"released by its holder", migrator.Config{}, true},
		{"taken over when stale", migrator.Config{LockStaleAfter: 400 * time.Millisecond, LockRefresh: 100 * time.Millisecond}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, c.cfg)
			path := seed(t)
			locks, err := h.srv.JS.KeyValue(t.Context(), events.BucketLocks)
			if err != nil {
				t.Fatal(err)
			}
			key := migrator.LockKey(path)
			val, _ := json.Marshal(map[string]string{"holder": "another-migrator"})
			if _, err := locks.Create(t.Context(), key, val); err != nil {
				t.Fatal(err)
			}
			req := h.request(events.MigrationRequested{Driver: "sqlite", Database: path, Source: "testdata/ok"})
			if c.release {
				eventually(t, 10*time.Second, "a redelivery of the locked request", func() bool {
					cons, err := h.srv.JS.Consumer(t.Context(), events.StreamName, migrator.Durable)
					if err != nil {
						return false
					}
					info, err := cons.Info(t.Context())
					return err == nil && info.NumRedelivered > 0
				})
				if got := h.answers(req); len(got) != 0 {
					t.Fatalf("answers while the database is locked: %v", got)
				}
				if err := locks.Delete(t.Context(), key); err != nil {
					t.Fatal(err)
				}
			}
			if fin, _ := h.final(req); fin.Type() != events.TypeMigrationCompleted {
				t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
			}
			// The migrator released its own lock.
			eventually(t, 5*time.Second, "the lock released", func() bool {
				_, err := locks.Get(t.Context(), key)
				return events.IsNotFound(err)
			})
		})
	}
}

func TestOtherEventOnCommandSubjectIsRejected(t *testing.T) {
	h := start(t, migrator.Config{})
	var rejected atomic.Pointer[events.EventRejected]
	sub, err := h.srv.Conn.Subscribe(events.SubjectRejected, func(m *nats.Msg) {
		if e, err := events.Decode(m.Header, m.Data); err == nil {
			r, _ := events.DataAs[events.EventRejected](e)
			rejected.Store(&r)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e := events.MustNew(events.Source("test", ""), events.MigrationStarted{Database: "/db", SnapshotID: "x"})
	m, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	m.Subject = events.SubjectMigrationCmd
	if _, err := h.srv.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a rejection", func() bool { return rejected.Load() != nil })
	if r := rejected.Load(); r.Consumer != migrator.Durable || r.EventID != e.ID() || r.RejectedType != events.TypeMigrationStarted || r.Field != "type" || !strings.Contains(r.Reason, events.SubjectMigrationCmd) {
		t.Errorf("rejection = %+v", r)
	}
}

// A down file that fails after committing a write (x-no-tx-wrap: its
// statements run one by one) is not undone from the snapshot over that
// write unless the rollback says restore_anyway: without it the database
// is left paused, dirty, with the counts; with it the snapshot comes back.
func TestFailedDownFileRestoresOnlyWhenAsked(t *testing.T) {
	src := t.TempDir()
	if err := os.CopyFS(src, os.DirFS("testdata/ok")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "0002_users_email.down.sql"), []byte("DELETE FROM users WHERE id <= 2;\nSELECT * FROM no_such_table;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, anyway := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "restore anyway"}[anyway], func(t *testing.T) {
			h := start(t, migrator.Config{})
			path := seed(t)
			loc := path + "?x-no-tx-wrap=true"
			if up, _ := h.final(h.request(events.MigrationRequested{Driver: "sqlite", Database: loc, Source: src, TargetVersion: 2})); up.Type() != events.TypeMigrationCompleted {
				t.Fatalf("migration answer %s: %s", up.Type(), up.Data())
			}
			fin, _ := h.final(h.request(events.MigrationRollbackRequested{Driver: "sqlite", Database: loc, Source: src, ToVersion: 1, RestoreAnyway: anyway}))
			failed := as[events.MigrationFailed](t, fin)
			if fin.Type() != events.TypeMigrationFailed || failed.File != "0002_users_email.down.sql" || failed.Restore == nil ||
				len(failed.Restore.Writes) != 1 || failed.Restore.Writes[0] != (events.TableWrites{Table: "users", Deletes: 2}) {
				t.Fatalf("answer %s %s, want migration.failed naming the down file, with the 2 deletes counted", fin.Type(), fin.Data())
			}
			v, dirty, users, _ := state(t, path)
			if !anyway {
				if failed.Restore.Restored || !strings.HasPrefix(failed.State, "dirty at version 1, paused: not restored") || v != 1 || !dirty || users != rows-2 {
					t.Errorf("state %q restored %v; database version %d dirty %v users %d; want paused, dirty at 1 (golang-migrate marks the target dirty going down), with the deletes kept (%d users)",
						failed.State, failed.Restore.Restored, v, dirty, users, rows-2)
				}
				return
			}
			if !failed.Restore.Restored || !strings.HasPrefix(failed.State, "clean at version 2 (restored from snapshot") || v != 2 || dirty || users != rows {
				t.Errorf("state %q restored %v; database version %d dirty %v users %d; want the snapshot restored: clean at 2 with %d users",
					failed.State, failed.Restore.Restored, v, dirty, users, rows)
			}
		})
	}
}
