package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/openstack"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/migrator"
	migdocker "github.com/cutover-dev/cutover/services/migrator/docker"
	migmysql "github.com/cutover-dev/cutover/services/migrator/mysql"
)

// identityEnv is what the command migration end-to-end tests need: the
// Docker engine, the identity service's v1 and v2 images in a registry of
// the process, a MariaDB database of the test's own bootstrapped at v1, and
// the service's config directory.
type identityEnv struct {
	cli    *client.Client
	db     *openstack.Database
	conf   string
	label  string
	images map[string]testkit.Image
}

func newIdentityEnv(t *testing.T) *identityEnv {
	t.Helper()
	server := os.Getenv("CUTOVER_TEST_MARIADB")
	if server == "" {
		t.Skip("command migration end-to-end test skipped: CUTOVER_TEST_MARIADB is unset; run make mariadb and export CUTOVER_TEST_MARIADB=mysql://cutover:cutover@127.0.0.1:3306/cutover")
	}
	cli := testkit.DockerOrSkip(t)
	run := fmt.Sprintf("cutover_ks%d", time.Now().UnixNano()%1e9)
	e := &identityEnv{cli: cli, conf: filepath.Join(t.TempDir(), "conf"), label: strings.ReplaceAll(run, "_", "-"), images: map[string]testkit.Image{}}
	var err error
	e.db, err = openstack.CreateDatabase(t.Context(), server, run)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.db.Drop(context.Background()); err != nil {
			t.Errorf("drop the test's databases: %v", err)
		}
	})
	if err := e.db.WriteConf(e.conf); err != nil {
		t.Fatal(err)
	}
	bin, err := testkit.BuildIdentityApp(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := testkit.StartTestRegistry(t)
	t.Cleanup(func() {
		if err := testkit.Cleanup(context.Background(), cli, testkit.LabelTest+"="+e.label); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	for _, v := range []string{"v1", "v2"} {
		img, err := reg.Push(t.Context(), bin, testkit.ImageSpec{Repo: e.label + "/keystone", Tag: v, Version: v, Labels: map[string]string{testkit.LabelTest: e.label}})
		if err != nil {
			t.Fatal(err)
		}
		e.images[v] = img
	}
	if err := testkit.PullImage(t.Context(), cli, e.images["v1"].Ref); err != nil {
		t.Fatal(err)
	}
	if err := openstack.Bootstrap(t.Context(), migdocker.New(cli), e.images["v1"].Ref, e.conf, e.label); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPlannerRunsCommandMigrationsInDocker runs the planner with the real
// migrator, whose command migrations run in one-off containers of the
// release's image on the real Docker engine against a real MariaDB
// database (the nodes are fakes reporting in cutover-nodes). It checks on
// the upgrade's events that db-sync --expand completed before the first
// node command, that db-sync --migrate was asked only after the last node
// answered, that the online data migrations ran until they exited 0, then
// the contract, each from the schema version the one before left.
func TestPlannerRunsCommandMigrationsInDocker(t *testing.T) {
	e := newIdentityEnv(t)
	db, err := e.db.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// What v1 wrote: rows without display_name, for the online data
	// migrations to fill, 50 a run.
	if _, err := db.Exec(`INSERT INTO items (id, name, written_by) SELECT CONCAT('i', seq), CONCAT('item ', seq), 'v1' FROM seq_1_to_120`); err != nil {
		t.Fatal(err)
	}

	s := natstest.Start(t)
	rec := s.Record(t)
	startMigrator(t, s.JS, migrator.Config{
		Drivers:   map[string]migrator.Driver{"mariadb": migmysql.Driver{DumpDir: t.TempDir()}},
		Commands:  migdocker.New(e.cli),
		Databases: e.db.Allowed("keystone"),
	})
	v1, v2 := e.images["v1"].Ref, e.images["v2"].Ref
	inv := twoNodeFleet(t, s.JS, "keystone", v1, &inventory.Database{Driver: "mariadb", URL: e.db.Public, Commands: openstack.Commands(e.conf, 50, time.Minute)})
	upgradeWithPlanner(t, s.JS, inv, events.Release{Name: "keystone-v2", Services: map[string]events.ServiceRelease{"keystone": {Image: v2}}}, 3*time.Minute)

	// The stream, in order: each migration request with its answer.
	type answered struct {
		at, doneAt int
		what       string
		result     *events.CommandResult
	}
	var steps []answered
	firstNodeCmd, lastNodeDone := -1, -1
	all := rec.All()
	for i, ev := range all {
		switch ev.Type() {
		case events.TypeNodeUpdateRequested:
			if firstNodeCmd < 0 {
				firstNodeCmd = i
			}
		case events.TypeNodeUpdateCompleted:
			lastNodeDone = i
		case events.TypeMigrationRequested:
			d, _ := events.DataAs[events.MigrationRequested](ev)
			if d.Command == nil || d.Command.Image != v2 || strings.Contains(string(ev.Data()), ":cutover@") {
				t.Errorf("migration request %s: want a command in the v2 image and no password", ev.Data())
				continue
			}
			steps = append(steps, answered{at: i, doneAt: -1, what: d.Phase + " " + strings.Join(d.Command.Command, " ")})
		case events.TypeMigrationCompleted, events.TypeMigrationFailed:
			for j := range steps {
				if all[steps[j].at].ID() == events.CausationID(ev) {
					steps[j].doneAt = i
					if d, err := events.DataAs[events.MigrationCompleted](ev); err == nil && ev.Type() == events.TypeMigrationCompleted {
						steps[j].result = d.Command
					} else {
						t.Errorf("%s: %s", steps[j].what, ev.Data())
					}
				}
			}
		}
	}
	var order []string
	for _, st := range steps {
		order = append(order, st.what)
	}
	want := []string{"expand db-sync --expand", "migrate db-sync --migrate", "migrate online-data-migrations --max-count 50", "contract db-sync --contract"}
	if !slices.Equal(order, want) {
		t.Fatalf("migration requests %q, want %q", order, want)
	}
	for _, st := range steps {
		if st.result == nil {
			t.Fatalf("%s: no migration.completed with a command result", st.what)
		}
	}
	if steps[0].doneAt < 0 || firstNodeCmd < 0 || steps[0].doneAt > firstNodeCmd {
		t.Errorf("expand answered at event %d, first node command at %d: want the expand done before any node moves", steps[0].doneAt, firstNodeCmd)
	}
	if steps[1].at < lastNodeDone {
		t.Errorf("migrate asked at event %d, last node answer at %d: want it after the roll (the version barrier)", steps[1].at, lastNodeDone)
	}
	schemas := []string{}
	for _, st := range steps {
		schemas = append(schemas, st.result.FromSchema+"->"+st.result.ToSchema)
	}
	if want := []string{"1->2", "2->3", "3->3", "3->4"}; !slices.Equal(schemas, want) {
		t.Errorf("schema versions by step %q, want %q", schemas, want)
	}
	if r := steps[2].result; r.Runs != 4 || r.ExitCode != 0 {
		t.Errorf("online data migrations: %d runs ending with exit %d; want 4 (50, 50, 20, then none left) ending with 0", r.Runs, r.ExitCode)
	}
	var nulls int
	var nullable string
	if err := db.QueryRow(`SELECT COUNT(*) FROM items WHERE display_name IS NULL`).Scan(&nulls); err != nil || nulls != 0 {
		t.Errorf("%d rows without display_name (%v), want 0", nulls, err)
	}
	if err := db.QueryRow(`SELECT is_nullable FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'items' AND column_name = 'display_name'`).Scan(&nullable); err != nil || nullable != "NO" {
		t.Errorf("display_name nullable %q (%v): the contract did not run", nullable, err)
	}
	if v, err := openstack.SchemaVersion(t.Context(), db); err != nil || v != 4 {
		t.Errorf("schema version %d (%v), want 4", v, err)
	}
	left, err := e.cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "dev.cutover.service=keystone").Add("ancestor", v2)})
	if err != nil || len(left.Items) != 0 {
		t.Errorf("migration containers left behind: %d (%v)", len(left.Items), err)
	}
}
