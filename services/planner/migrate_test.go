package planner_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner"
)

// fakeMigrator answers migration requests the way the migrator does.
// fail decides per request whether it reports a failure.
func fakeMigrator(t *testing.T, js jetstream.JetStream, fail func(events.MigrationRequested) bool) {
	t.Helper()
	pub := events.NewPublisher(js)
	c, err := events.Consume(t.Context(), js, events.ConsumerConfig{Durable: "fake-migrator", FilterSubjects: []string{events.SubjectMigrationCmd}},
		func(ctx context.Context, req events.Event) error {
			var reply events.Data
			switch req.Type() {
			case events.TypeMigrationRequested:
				d, _ := events.DataAs[events.MigrationRequested](req)
				if fail != nil && fail(d) {
					reply = events.MigrationFailed{Database: d.Database, Error: "syntax error", Version: 3, State: "clean at version 3 (restored from snapshot)"}
				} else {
					reply = events.MigrationCompleted{Database: d.Database, FromVersion: 3, ToVersion: d.TargetVersion, SnapshotID: "snap-" + d.Phase}
				}
			case events.TypeMigrationRollbackRequested:
				d, _ := events.DataAs[events.MigrationRollbackRequested](req)
				reply = events.MigrationRollbackCompleted{Database: d.Database, Path: "down", FromVersion: 5, ToVersion: d.ToVersion}
			default:
				return nil
			}
			return pub.Publish(ctx, events.MustNew(events.Source("migrator", ""), reply, events.CausedBy(req)))
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
}

// dbInventory gives web a database at version 3 on nodes n1 and n2.
func dbInventory() *inventory.Inventory {
	return &inventory.Inventory{
		Nodes: map[string]inventory.Node{"n1": {Roles: []string{"r"}}, "n2": {Roles: []string{"r"}}},
		Roles: map[string]inventory.Role{"r": {Services: []string{"web"}}},
		Services: map[string]inventory.Service{"web": {
			Containers: []inventory.Container{{Name: "web", Image: "web:v1"}},
			Database:   &inventory.Database{Driver: "sqlite", URL: "/var/lib/web.db", Migrations: "/migrations", Version: 3},
		}},
	}
}

// requestMigrating asks for web:v2, whose image carries migrations up to 5.
func requestMigrating(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	e := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{
		"web": {Image: "web:v2", MigrationsVersion: 5}}}})
	natstest.Publish(t, js, e)
	return e.ID()
}

// index returns the position in the history of the first event that matches.
func (h *history) index(match func(events.Event) bool) int {
	for i, e := range h.All() {
		if match(e) {
			return i
		}
	}
	return -1
}

func migrationPhase(phase string) func(events.Event) bool {
	return func(e events.Event) bool {
		d, err := events.DataAs[events.MigrationRequested](e)
		return e.Type() == events.TypeMigrationRequested && err == nil && d.Phase == phase
	}
}

// barrierUpgrade starts a planner with web's database on n1 and n2 (both on
// web:v1 in cutover-nodes, which the fake node-updaters never refresh), a
// fake migrator, and an upgrade that migrates web; barrierTimeout 0 keeps
// the planner's default.
func barrierUpgrade(t *testing.T, barrierTimeout time.Duration) (*natstest.Server, *history, string) {
	t.Helper()
	s, h := migratingStack(t, nil, planner.Config{BarrierTimeout: barrierTimeout}, faults{})
	return s, h, requestMigrating(t, s.JS)
}

// faults says which commands migratingStack's fakes fail (nil: none).
type faults struct {
	n2        func(events.NodeUpdateRequested) bool
	migration func(events.MigrationRequested) bool
}

// migratingStack starts a planner with web on n1 and n2 (both on web:v1 in
// cutover-nodes, which the fake node-updaters never refresh), web's
// database db (dbInventory's when nil), and a fake migrator, failing what
// f says. The planner polls every 20ms unless cfg says otherwise.
func migratingStack(t *testing.T, db *inventory.Database, cfg planner.Config, f faults) (*natstest.Server, *history) {
	t.Helper()
	s := natstest.Start(t)
	h := record(t, s)
	webNodes(t, s, "n1", "n2")
	fakeNode(t, s.JS, "n1", nil)
	fakeNode(t, s.JS, "n2", f.n2)
	fakeMigrator(t, s.JS, f.migration)
	cfg.Inventory = dbInventory()
	if db != nil {
		svc := cfg.Inventory.Services["web"]
		svc.Database = db
		cfg.Inventory.Services["web"] = svc
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	startPlannerWith(t, s.JS, cfg)
	return s, h
}

func TestUpgradeExpandsRollsThenContractsAtTheVersionBarrier(t *testing.T) {
	s, h, id := barrierUpgrade(t, 0)
	// Both waves complete, but the fake node-updaters do not refresh
	// cutover-nodes: the barrier must hold, naming what it waits for.
	var u *planner.Upgrade
	eventually(t, 15*time.Second, "the barrier to wait for n2", func() bool {
		u, _ = planner.LoadUpgrade(t.Context(), s.JS, id)
		return u != nil && strings.Contains(u.Barrier, "n2/web-n2 runs web:v1")
	})
	if i := h.index(migrationPhase("contract")); i >= 0 {
		t.Fatal("contract migration sent while instances still run the old image")
	}
	putInventory(t, s.JS, "n1", web("web-n1", "web:v2"))
	putInventory(t, s.JS, "n2", web("web-n2", "web:v1"))
	eventually(t, 10*time.Second, "the barrier to name only n2", func() bool {
		u, _ = planner.LoadUpgrade(t.Context(), s.JS, id)
		return u != nil && !strings.Contains(u.Barrier, "n1/") && strings.Contains(u.Barrier, "n2/")
	})
	putInventory(t, s.JS, "n2", web("web-n2", "web:v2"))
	u = waitPhase(t, s.JS, id, planner.PhaseCompleted)

	expand := h.index(migrationPhase("expand"))
	firstCmd := h.index(func(e events.Event) bool { return e.Type() == events.TypeNodeUpdateRequested })
	contract := h.index(migrationPhase("contract"))
	lastDone := -1
	for i, e := range h.All() {
		if e.Type() == events.TypeNodeUpdateCompleted {
			lastDone = i
		}
	}
	if expand < 0 || firstCmd < expand || contract < lastDone {
		t.Errorf("order: expand at %d, first node command at %d, last node answer at %d, contract at %d; want expand < commands < contract", expand, firstCmd, lastDone, contract)
	}
	req, _ := events.DataAs[events.MigrationRequested](h.of(events.TypeMigrationRequested)[0])
	if req.Driver != "sqlite" || req.Database != "/var/lib/web.db" || req.Source != "/migrations" || req.TargetVersion != 5 || req.Service != "web" {
		t.Errorf("expand request = %+v; want the inventory's database and the release's migrations_version", req)
	}
	if m := u.Migrations[0]; m.Expand != planner.MigrationCompleted || m.Contract != planner.MigrationCompleted || m.SnapshotID != "snap-expand" {
		t.Errorf("migration state = %+v", m)
	}
}

// An instance that never reaches the new image does not keep the upgrade
// waiting in silence: past the barrier timeout it pauses, naming the
// instance, and a resume once the instance caught up finishes the upgrade.
func TestVersionBarrierTimesOutIntoAPause(t *testing.T) {
	s, h, id := barrierUpgrade(t, 300*time.Millisecond)
	eventually(t, 15*time.Second, "the barrier to wait for n2", func() bool {
		u, _ := planner.LoadUpgrade(t.Context(), s.JS, id)
		return u != nil && strings.Contains(u.Barrier, "n2/web-n2 runs web:v1")
	})
	putInventory(t, s.JS, "n1", web("web-n1", "web:v2")) // n2 stays behind
	u := waitPhase(t, s.JS, id, planner.PhasePaused)
	for _, want := range []string{"version barrier not reached within 300ms", "n2/web-n2 runs web:v1", "then resume"} {
		if !strings.Contains(u.Reason, want) {
			t.Errorf("paused reason %q lacks %q", u.Reason, want)
		}
	}
	if u.Barrier != "" || !u.BarrierSince.IsZero() {
		t.Errorf("paused upgrade still waits at the barrier: %q since %v", u.Barrier, u.BarrierSince)
	}
	paused := h.of(events.TypeUpgradePaused)
	if len(paused) != 1 {
		t.Fatalf("%d upgrade.paused events, want 1", len(paused))
	}
	if d, _ := events.DataAs[events.UpgradePaused](paused[0]); d.Reason != u.Reason {
		t.Errorf("upgrade.paused reason %q, want the upgrade's %q", d.Reason, u.Reason)
	}
	if h.index(migrationPhase("contract")) >= 0 {
		t.Fatal("contract migration sent although n2 still runs the old image")
	}

	putInventory(t, s.JS, "n2", web("web-n2", "web:v2"))
	control(t, s.JS, id, events.ControlResume)
	u = waitPhase(t, s.JS, id, planner.PhaseCompleted)
	if m := u.Migrations[0]; m.Contract != planner.MigrationCompleted {
		t.Errorf("contract after resume: %+v", m)
	}
}

func TestFailedExpandTouchesNoNode(t *testing.T) {
	s, h := migratingStack(t, nil, planner.Config{PollInterval: planner.DefaultPollInterval},
		faults{migration: func(d events.MigrationRequested) bool { return d.Phase == "expand" }})

	id := requestMigrating(t, s.JS)
	u := waitPhase(t, s.JS, id, planner.PhaseRolledBack)
	if !strings.Contains(u.Reason, "expand migration of web failed: syntax error") {
		t.Errorf("reason = %q", u.Reason)
	}
	if n := len(h.of(events.TypeNodeUpdateRequested)); n != 0 {
		t.Errorf("%d node commands after a failed expand, want 0", n)
	}
	if n := len(h.of(events.TypeMigrationRollbackRequested)); n != 0 {
		t.Errorf("%d database rollbacks; the migrator already restored a failed expand", n)
	}
}

func TestRollbackTakesTheDatabaseBackAfterTheContainers(t *testing.T) {
	s, h := migratingStack(t, nil, planner.Config{PollInterval: planner.DefaultPollInterval},
		faults{n2: func(d events.NodeUpdateRequested) bool { return !d.Rollback }})

	id := requestMigrating(t, s.JS)
	waitPhase(t, s.JS, id, planner.PhaseRolledBack)
	eventually(t, 5*time.Second, "rollback.completed", func() bool { return len(h.of(events.TypeRollbackCompleted)) == 1 })
	rbCmd := h.index(func(e events.Event) bool {
		d, _ := events.DataAs[events.NodeUpdateRequested](e)
		return e.Type() == events.TypeNodeUpdateRequested && d.Rollback && events.NodeID(e) == "n1"
	})
	dbRb := h.index(func(e events.Event) bool { return e.Type() == events.TypeMigrationRollbackRequested })
	if rbCmd < 0 || dbRb < rbCmd {
		t.Fatalf("n1 rollback at %d, database rollback at %d; want the database after the containers", rbCmd, dbRb)
	}
	d, _ := events.DataAs[events.MigrationRollbackRequested](h.of(events.TypeMigrationRollbackRequested)[0])
	if d.ToVersion != 3 || d.SnapshotID != "snap-expand" || d.Database != "/var/lib/web.db" {
		t.Errorf("database rollback = %+v; want version 3 with the expand's snapshot", d)
	}
}

// A database migrated by commands (OpenStack's db_sync) runs them as phases:
// expand before the first node command, then, past the version barrier,
// migrate, the online data migrations (repeat) and contract, in that order,
// each a command in the release's new image with the inventory's settings.
func TestCommandMigrationsRunAsPhases(t *testing.T) {
	s, h := migratingStack(t, &inventory.Database{Driver: "mariadb", URL: "mysql://keystone@db:3306/keystone", Commands: &inventory.DatabaseCommands{
		Expand: []string{"keystone-manage", "db_sync", "--expand"}, Migrate: []string{"keystone-manage", "db_sync", "--migrate"},
		OnlineData: []string{"keystone-manage", "online_data"}, Contract: []string{"keystone-manage", "db_sync", "--contract"},
		Mounts: []string{"/etc/kolla/keystone:/var/lib/kolla/config_files:ro"}, Network: "host", Timeout: "5m",
	}}, planner.Config{}, faults{})
	e := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	natstest.Publish(t, s.JS, e)
	eventually(t, 15*time.Second, "the waves to finish", func() bool { return len(h.of(events.TypeNodeUpdateCompleted)) == 2 })
	putInventory(t, s.JS, "n1", web("web-n1", "web:v2"))
	putInventory(t, s.JS, "n2", web("web-n2", "web:v2"))
	u := waitPhase(t, s.JS, e.ID(), planner.PhaseCompleted)

	firstCmd := h.index(func(e events.Event) bool { return e.Type() == events.TypeNodeUpdateRequested })
	lastDone := -1
	var order []string
	var at []int
	seen := map[string]bool{}
	for i, ev := range h.All() {
		if ev.Type() == events.TypeNodeUpdateCompleted {
			lastDone = i
		}
		// The recorder sees every publish: when a save races the deadline
		// watcher's and loses, the handler runs again and publishes its
		// outbox again under the same ids, which the stream drops as
		// duplicates (Nats-Msg-Id) and the migrator never sees twice.
		if ev.Type() != events.TypeMigrationRequested || seen[ev.ID()] {
			continue
		}
		seen[ev.ID()] = true
		d, _ := events.DataAs[events.MigrationRequested](ev)
		if d.Command == nil || d.Source != "" || d.Command.Image != "web:v2" || d.Command.Network != "host" || d.Command.TimeoutSeconds != 300 || len(d.Command.Mounts) != 1 {
			t.Errorf("request %+v (command %+v): want a command in web:v2 with the inventory's settings", d, d.Command)
			continue
		}
		order = append(order, fmt.Sprintf("%s:%s:%v", d.Phase, strings.Join(d.Command.Command[1:], " "), d.Command.Repeat))
		at = append(at, i)
	}
	want := []string{"expand:db_sync --expand:false", "migrate:db_sync --migrate:false", "migrate:online_data:true", "contract:db_sync --contract:false"}
	if !slices.Equal(order, want) {
		t.Fatalf("migration requests %v, want %v", order, want)
	}
	// What the migrator reads: the stream holds each request once.
	cons, err := s.JS.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectMigrationCmd}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != uint64(len(want)) {
		t.Errorf("the stream holds %d migration requests, want %d", info.NumPending, len(want))
	}
	if at[0] > firstCmd || at[1] < lastDone {
		t.Errorf("order: expand at %d, first node command at %d, last node answer at %d, migrate at %d; want expand < nodes < migrate", at[0], firstCmd, lastDone, at[1])
	}
	if m := u.Migrations[0]; m.Expand != planner.MigrationCompleted || m.Contract != planner.MigrationCompleted || m.PostRoll != 2 {
		t.Errorf("migration state = %+v", m)
	}
}

// A database's snapshot_method and fence in the inventory travel in every
// migration request the planner sends for it (issue 18: the method and the
// fence are chosen per database).
func TestInventorySnapshotMethodAndFenceReachTheMigrator(t *testing.T) {
	s, h := migratingStack(t, &inventory.Database{Driver: "postgres", URL: "postgres://migrator@db:5432/web", Migrations: "/migrations", Version: 3,
		SnapshotMethod: "dump", Fence: "read-only"}, planner.Config{}, faults{})
	requestMigrating(t, s.JS)
	eventually(t, 15*time.Second, "a migration request", func() bool { return len(h.of(events.TypeMigrationRequested)) > 0 })
	for _, e := range h.of(events.TypeMigrationRequested) {
		req, _ := events.DataAs[events.MigrationRequested](e)
		if req.SnapshotMethod != "dump" || req.Fence != "read-only" || req.Driver != "postgres" {
			t.Errorf("migration request = %+v; want the inventory's snapshot_method dump and fence read-only", req)
		}
	}
}
