package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
	"github.com/cutover-dev/cutover/services/migrator"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
	"github.com/cutover-dev/cutover/services/planner"
)

// TestFailingHealthRollsBackContainersAndDatabase ties issue 6 together with
// the real services: failing health signals during a wave's watch window make
// the auditor's watcher publish a failing verdict and ask for a rollback; the
// real planner returns the changed nodes to their previous images and then
// the real migrator takes the database back below the expand migration.
// Only the node-updaters are fakes (they report what a real one would).
func TestFailingHealthRollsBackContainersAndDatabase(t *testing.T) {
	s, u, db := upgradeFailingHealth(t, map[string]string{
		"0001_orders.expand.up.sql":   "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);",
		"0001_orders.expand.down.sql": "DROP TABLE orders;",
	})
	if u.Phase != planner.PhaseRolledBack || !strings.Contains(u.Reason, "web") {
		t.Fatalf("upgrade ended %s (%q), want rolled back because of web's health", u.Phase, u.Reason)
	}

	// The decision trail is in the stream: a failing verdict, the auditor's
	// rollback request, the database rollback.
	types := map[string]int{}
	var requestedBy string
	for _, e := range streamEvents(t, s.JS) {
		types[e.Type()]++
		switch e.Type() {
		case events.TypeHealthVerdict:
			if v, _ := events.DataAs[events.HealthVerdict](e); v.Verdict != "failing" {
				types["non-failing verdict"]++
			}
		case events.TypeRollbackRequested:
			r, _ := events.DataAs[events.RollbackRequested](e)
			requestedBy = r.RequestedBy
		}
	}
	if types[events.TypeHealthVerdict] == 0 || types["non-failing verdict"] > 0 || types[events.TypeRollbackRequested] != 1 || requestedBy != "auditor" {
		t.Errorf("verdicts %d (non-failing %d), rollback requests %d by %q; want failing verdicts and one request by the auditor",
			types[events.TypeHealthVerdict], types["non-failing verdict"], types[events.TypeRollbackRequested], requestedBy)
	}
	if types[events.TypeMigrationRollbackCompleted] != 1 {
		t.Errorf("%d migration rollbacks completed, want 1", types[events.TypeMigrationRollbackCompleted])
	}

	// The database is back below the expand migration, with its data.
	var orders, customers int
	if err := db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'orders'").Scan(&orders); err != nil || orders != 0 {
		t.Errorf("orders table still there (%d, %v): the database was not rolled back", orders, err)
	}
	if err := db.QueryRow("SELECT COUNT(*) FROM customers").Scan(&customers); err != nil || customers != 2 {
		t.Errorf("customers = %d, %v; want the 2 rows written before the upgrade", customers, err)
	}
	// Every changed node is back on v1.
	for _, np := range u.Nodes {
		for _, r := range np.Results {
			if r.Result == events.ResultReplaced && r.ToImage == "web:v2" && (u.Rollback == nil || !contains(u.Rollback.Done, np.Node)) {
				t.Errorf("node %s was updated to v2 but not rolled back (rollback %+v)", np.Node, u.Rollback)
			}
		}
	}
}

// upgradeFailingHealth upgrades web to v2 with the migrations files (of
// version 1) on a SQLite database holding two customers, with the real
// migrator, planner and auditor's watcher: as soon as the first wave
// completes, a monitor reports web failing on n1. It returns when the
// upgrade ended or paused.
func upgradeFailingHealth(t *testing.T, files map[string]string) (*natstest.Server, *planner.Upgrade, *sql.DB) {
	t.Helper()
	s := natstest.Start(t)
	migrations, dbPath, db := sqliteWithMigrations(t, files, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada'), ('grace')")
	mig, err := migrator.New(migrator.Config{Drivers: map[string]migrator.Driver{"sqlite": migsqlite.Driver{}}}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "migrator", mig.Start, mig.Close)
	w, err := verdict.NewWatcher(verdict.WatcherConfig{Judge: verdict.Config{Watch: 20 * time.Second}}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "watcher", w.Start, w.Close)
	inv := twoNodeFleet(t, s.JS, "web", "web:v1", &inventory.Database{Driver: "sqlite", URL: dbPath, Migrations: migrations, Version: 0})
	p, err := planner.New(t.Context(), planner.Config{Inventory: inv, PollInterval: 50 * time.Millisecond}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "planner", p.Start, p.Close)

	// As soon as the first wave completes, a monitor reports web failing on n1.
	pub := events.NewPublisher(s.JS)
	sub, err := s.Conn.Subscribe(events.SubjectUpgradeStatusAll, func(m *nats.Msg) {
		e, err := events.Decode(m.Header, m.Data)
		if err != nil || e.Type() != events.TypeWaveCompleted {
			return
		}
		if d, _ := events.DataAs[events.WaveCompleted](e); d.Wave != 0 {
			return
		}
		for range 3 {
			sig := events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "web", Node: "n1", Status: "fail", Message: "HTTP 503"},
				events.WithSubject("web"), events.WithNode("n1"))
			if err := pub.Publish(context.Background(), sig); err != nil {
				t.Errorf("publish signal: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{
		"web": {Image: "web:v2", MigrationsVersion: 1}}}})
	if err := pub.Publish(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	var u *planner.Upgrade
	natstest.Eventually(t, 90*time.Second, "the upgrade to end", func() bool {
		u, err = planner.LoadUpgrade(t.Context(), s.JS, req.ID())
		return err == nil && (u.Final() || u.Phase == planner.PhasePaused) && len(u.Outbox) == 0
	})
	return s, u, db
}

// The planner's rollback of an upgrade whose migration is a data migration
// without a down file goes through the snapshot the migration took. SQLite
// cannot fence the run, so the migrator cannot tell the migration's own
// writes (it rewrites every customer) from writes applications committed
// while it ran: it counts them, flags them, and refuses to restore; the
// upgrade pauses with the counts, the database keeps every write, and the
// refusal offers restore_anyway. (A fenced PostgreSQL run is rolled back
// without a pause: TestSnapshotRollbackLeavesOutTheMigrationsOwnWrites.)
func TestFailingHealthRollsBackADataMigrationThroughItsSnapshot(t *testing.T) {
	s, u, _ := upgradeFailingHealth(t, map[string]string{
		"0001_names.expand.up.sql": "UPDATE customers SET name = upper(name);",
	})
	if u.Phase != planner.PhasePaused || !strings.Contains(u.Reason, "rollback failed") || !strings.Contains(u.Reason, "2 rows written after snapshot") ||
		!strings.Contains(u.Reason, "customers 0 inserted, 2 updated, 0 deleted") || !strings.Contains(u.Reason, "the migration's own writes included") {
		t.Fatalf("upgrade ended %s (%q), want paused naming the 2 rows counted, the migration's own writes included", u.Phase, u.Reason)
	}
	var refused []events.MigrationFailed
	for _, e := range streamEvents(t, s.JS) {
		switch e.Type() {
		case events.TypeMigrationRollbackCompleted:
			t.Errorf("migration rolled back %s, want refused: an unfenced run's writes cannot be told from the applications'", e.Data())
		case events.TypeMigrationFailed:
			f, _ := events.DataAs[events.MigrationFailed](e)
			refused = append(refused, f)
		}
	}
	if len(refused) != 1 || refused[0].Restore == nil || refused[0].Restore.Restored || !refused[0].Restore.MigrationWritesIncluded ||
		len(refused[0].Choices) == 0 || !strings.Contains(refused[0].Choices[0], "restore_anyway") || !strings.Contains(refused[0].Choices[0], "--restore-anyway") {
		t.Errorf("migration failures %+v, want one refused restore, flagged, offering restore_anyway", refused)
	}
	// A new connection: nothing was restored, the rows keep every write.
	db, err := sql.Open("sqlite", u.Migrations[0].Database)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var upper int
	if err := db.QueryRow("SELECT COUNT(*) FROM customers WHERE name IN ('ADA', 'GRACE')").Scan(&upper); err != nil || upper != 2 {
		t.Errorf("%d customers renamed (%v), want 2: the refused restore must change nothing", upper, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func jetstreamAll() jetstream.OrderedConsumerConfig {
	return jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}}
}

// streamEvents returns every event in the stream now, in stream order;
// messages that are not events are left out.
func streamEvents(t *testing.T, js jetstream.JetStream) []events.Event {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), events.StreamName, jetstreamAll())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for range info.State.Msgs {
		msg, err := cons.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e, err := events.Decode(msg.Headers(), msg.Data()); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// startService starts one of the services a test runs in process and closes
// it when the test ends.
func startService(t *testing.T, name string, startFn, closeFn func(context.Context) error) {
	t.Helper()
	if err := startFn(t.Context()); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { _ = closeFn(context.Background()) })
}

// TestFailingSignalRollsBackThroughThePlanner runs the auditor's watcher and
// the real planner with fake node-updaters (moved here from the auditor so
// that its module does not require the planner's): failing signals during the first wave's watch window give a
// failing verdict and a rollback.requested, which the planner turns into
// rollback commands for every node it changed.
func TestFailingSignalRollsBackThroughThePlanner(t *testing.T) {
	s := natstest.Start(t)
	b := s.Record(t)
	nodeThatReports(t, s.JS, "n1", []events.ObservedContainer{{Name: "web-1", Service: "web", Image: "web:v1", State: "running"}})
	nodeThatReports(t, s.JS, "n2", []events.ObservedContainer{{Name: "web-2", Service: "web", Image: "web:v1", State: "running"}})
	p, err := planner.New(t.Context(), planner.Config{}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "planner", p.Start, p.Close)
	w, err := verdict.NewWatcher(verdict.WatcherConfig{Judge: verdict.Config{Watch: 20 * time.Second, PostWatch: 20 * time.Second}}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "watcher", w.Start, w.Close)

	// Ask for web to move to web:v2 on n1 and n2.
	pub := events.NewPublisher(s.JS)
	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "v2",
		Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	if err := pub.Publish(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	id := req.ID()
	eventually(t, 15*time.Second, "wave 0 to complete", func() bool { return len(b.Of(events.TypeWaveCompleted)) > 0 })
	for range 3 {
		fail := events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "web", Node: "n1", Status: "fail", Check: "http /healthz", Message: "HTTP 503"},
			events.WithSubject("web"), events.WithNode("n1"))
		if err := pub.Publish(t.Context(), fail); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, 15*time.Second, "a rollback.requested", func() bool { return len(b.Of(events.TypeRollbackRequested)) == 1 })
	vs := b.Of(events.TypeHealthVerdict)
	if len(vs) != 1 {
		t.Fatalf("%d verdicts, want 1", len(vs))
	}
	v, _ := events.DataAs[events.HealthVerdict](vs[0])
	if v.Service != "web" || v.Verdict != verdict.Failing || v.Wave != 0 || events.UpgradeID(vs[0]) != id ||
		!strings.Contains(strings.Join(v.Evidence, "\n"), "3 consecutive failures from n1") {
		t.Errorf("verdict = %+v (upgrade %s), want web failing in wave 0 of %s with the failures as evidence", v, events.UpgradeID(vs[0]), id)
	}
	rb := b.Of(events.TypeRollbackRequested)[0]
	rd, _ := events.DataAs[events.RollbackRequested](rb)
	if events.UpgradeID(rb) != id || events.CausationID(rb) != vs[0].ID() || !strings.Contains(rd.Reason, "service web") {
		t.Errorf("rollback.requested = %+v (upgrade %s, cause %s), want upgrade %s caused by the verdict, naming web", rd, events.UpgradeID(rb), events.CausationID(rb), id)
	}

	eventually(t, 15*time.Second, "the planner to complete the rollback", func() bool { return len(b.Of(events.TypeRollbackCompleted)) == 1 })
	rollbackCmds := map[string]bool{}
	for _, c := range b.Of(events.TypeNodeUpdateRequested) {
		if d, _ := events.DataAs[events.NodeUpdateRequested](c); d.Rollback && d.Containers[0].Image == "web:v1" {
			rollbackCmds[events.NodeID(c)] = true
		}
	}
	// The fake nodes answer at once, so wave 1 may have run before the
	// signals: every node that changed is rolled back, n1 at least.
	if !rollbackCmds["n1"] {
		t.Errorf("rollback commands went to %v, want n1 (and n2 if its wave ran) back to web:v1", rollbackCmds)
	}
	rc, _ := events.DataAs[events.RollbackCompleted](b.Of(events.TypeRollbackCompleted)[0])
	if rc.Result != "completed" || !strings.Contains(rc.Reason, "service web failed its health policy") {
		t.Errorf("rollback.completed = %+v, want completed with the auditor's reason", rc)
	}
	u, err := planner.LoadUpgrade(t.Context(), s.JS, id)
	if err != nil || u.Phase != planner.PhaseRolledBack {
		t.Errorf("planner upgrade phase = %v (err %v), want %s", u, err, planner.PhaseRolledBack)
	}
}
