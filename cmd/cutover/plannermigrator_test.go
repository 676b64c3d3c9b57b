package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/migrator"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
	"github.com/cutover-dev/cutover/services/planner"
)

// nodeThatReports answers a node's commands (updates and rollbacks) and,
// like a node-updater, reports the containers' new images in cutover-nodes,
// which the planner's version barrier reads.
func nodeThatReports(t *testing.T, js jetstream.JetStream, node string, containers []events.ObservedContainer) {
	t.Helper()
	if err := natstest.ReportInventory(t.Context(), js, node, containers); err != nil {
		t.Fatal(err)
	}
	natstest.AnswerNodes(t, js, "fake-"+node, events.NodeCmdSubject(node), func(ctx context.Context, d events.NodeUpdateRequested) (events.Data, error) {
		var rs []events.ContainerResult
		for _, target := range d.Containers {
			for i := range containers {
				if containers[i].Name == target.Container {
					rs = append(rs, events.ContainerResult{Container: target.Container, Result: events.ResultReplaced, FromImage: containers[i].Image, ToImage: target.Image})
					containers[i].Image = target.Image
				}
			}
		}
		if err := natstest.ReportInventory(ctx, js, node, containers); err != nil {
			return nil, err
		}
		return events.NodeUpdateCompleted{Wave: d.Wave, Rollback: d.Rollback, Results: rs}, nil
	})
}

// twoNodeFleet is the fleet most cross-service tests roll: nodes n1 and n2,
// each running one container of service on image (reporting as
// nodeThatReports does), with db as the service's database. It returns the
// inventory to give the planner.
func twoNodeFleet(t *testing.T, js jetstream.JetStream, service, image string, db *inventory.Database) *inventory.Inventory {
	t.Helper()
	inv := &inventory.Inventory{
		Nodes: map[string]inventory.Node{"n1": {Roles: []string{"r"}}, "n2": {Roles: []string{"r"}}},
		Roles: map[string]inventory.Role{"r": {Services: []string{service}}},
		Services: map[string]inventory.Service{service: {
			Containers: []inventory.Container{{Name: service, Image: image}},
			Database:   db,
		}},
	}
	for _, n := range []string{"n1", "n2"} {
		nodeThatReports(t, js, n, []events.ObservedContainer{{Name: service, Service: service, Image: image, State: "running"}})
	}
	return inv
}

// TestPlannerDrivesTheRealMigrator runs the planner with the real migrator
// on SQLite: expand before the rolling waves, contract after every instance
// reports the new image, and the database ends at the release's version.
func TestPlannerDrivesTheRealMigrator(t *testing.T) {
	s := natstest.Start(t)
	migrations, dbPath, db := sqliteWithMigrations(t, map[string]string{
		"0001_orders.expand.up.sql":     "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);",
		"0001_orders.expand.down.sql":   "DROP TABLE orders;",
		"0002_legacy.contract.up.sql":   "DROP TABLE legacy;",
		"0002_legacy.contract.down.sql": "CREATE TABLE legacy (id INTEGER);",
	}, "CREATE TABLE legacy (id INTEGER)")

	startMigrator(t, s.JS, migrator.Config{Drivers: map[string]migrator.Driver{"sqlite": migsqlite.Driver{}}})
	inv := twoNodeFleet(t, s.JS, "web", "web:v1", &inventory.Database{Driver: "sqlite", URL: dbPath, Migrations: migrations, Version: 0})
	u := upgradeWithPlanner(t, s.JS, inv, events.Release{Name: "v2", Services: map[string]events.ServiceRelease{
		"web": {Image: "web:v2", MigrationsVersion: 2}}}, time.Minute)
	var version int
	if err := db.QueryRow("SELECT version FROM schema_migrations").Scan(&version); err != nil || version != 2 {
		t.Errorf("database version = %d, %v; want 2", version, err)
	}
	var legacy int
	if err := db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'legacy'").Scan(&legacy); err != nil || legacy != 0 {
		t.Errorf("legacy table still there (%d, %v): contract did not run", legacy, err)
	}
	if m := u.Migrations[0]; m.SnapshotID == "" || m.Expand != planner.MigrationCompleted || m.Contract != planner.MigrationCompleted {
		t.Errorf("migration = %+v, want both phases completed with a snapshot", m)
	}
}

// startMigrator runs the real migrator with cfg until the test ends.
func startMigrator(t *testing.T, js jetstream.JetStream, cfg migrator.Config) {
	t.Helper()
	mig, err := migrator.New(cfg, js)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, mig, 10*time.Second)
}

// upgradeWithPlanner runs a planner on inv, asks it for release and waits
// (up to within) for the upgrade to complete; it fails the test otherwise.
func upgradeWithPlanner(t *testing.T, js jetstream.JetStream, inv *inventory.Inventory, release events.Release, within time.Duration) *planner.Upgrade {
	t.Helper()
	p, err := planner.New(t.Context(), planner.Config{Inventory: inv, PollInterval: 50 * time.Millisecond}, js)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, p, 10*time.Second)
	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: release})
	natstest.Publish(t, js, req)
	var u *planner.Upgrade
	natstest.Eventually(t, within, "the upgrade to end", func() bool {
		u, err = planner.LoadUpgrade(t.Context(), js, req.ID())
		return err == nil && u.Final() && len(u.Outbox) == 0
	})
	if u.Phase != planner.PhaseCompleted {
		t.Fatalf("upgrade %s: %s (migrations %+v)", u.Phase, u.Reason, u.Migrations)
	}
	return u
}

// sqliteWithMigrations writes a migrations directory and creates a SQLite
// database with schema, for tests that run the real migrator.
func sqliteWithMigrations(t *testing.T, files map[string]string, schema string) (migrations, dbPath string, db *sql.DB) {
	t.Helper()
	dir := t.TempDir()
	migrations = filepath.Join(dir, "migrations")
	if err := os.MkdirAll(migrations, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(migrations, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbPath = filepath.Join(dir, "web.db")
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(schema); err != nil {
		t.Fatal(err)
	}
	return migrations, dbPath, db
}
