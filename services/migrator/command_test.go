package migrator_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/docker"
	"github.com/cutover-dev/cutover/services/migrator/internal/mytest"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
)

// identityDir holds the identityapp binary the command tests build once.
var identityDir string

// commandEnv is what a command migration test needs: Docker, a registry
// with the service's images, MariaDB with the service's database and its
// config directory, and a migrator that runs commands.
type commandEnv struct {
	h        *harness
	cli      *client.Client
	url      string // the database, password included
	conf     string // the service's config directory, mounted at /etc/identity
	image    string // the new image (entrypoint /app, release v2)
	noCmd    string // an image whose entrypoint does not exist
	dumpDir  string
	password string
	sent     map[string]bool // the ids of the requests this test sent
}

func newCommandEnv(t *testing.T) *commandEnv {
	t.Helper()
	cli := testkit.DockerOrSkip(t)
	url, _ := mytest.NewDatabase(t)
	bin, err := testkit.BuildIdentityApp(t.Context(), identityDir)
	if err != nil {
		t.Fatal(err)
	}
	reg := testkit.StartTestRegistry(t)
	tag := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	img, err := reg.Push(t.Context(), bin, testkit.ImageSpec{Repo: "cutover-i17/keystone", Tag: tag, Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := reg.Push(t.Context(), bin, testkit.ImageSpec{Repo: "cutover-i17/keystone-broken", Tag: tag, Entrypoint: []string{"/usr/bin/keystone-manage"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ref := range []string{img.Ref, bad.Ref} {
			_, _ = cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true})
		}
	})
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "identity.conf"), []byte("[database]\nconnection = "+url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dumps := t.TempDir()
	h := start(t, migrator.Config{
		Drivers:  map[string]migrator.Driver{"mysql": mysql.Driver{DumpDir: dumps}},
		Commands: docker.New(cli),
	})
	return &commandEnv{h: h, cli: cli, url: url, conf: conf, image: img.Ref, noCmd: bad.Ref, dumpDir: dumps, password: "cutover", sent: map[string]bool{}}
}

// request asks for a command migration of the env's database.
func (c *commandEnv) request(phase string, cmd events.MigrationCommand) (events.Event, []events.Event) {
	if cmd.Image == "" {
		cmd.Image = c.image
	}
	cmd.Mounts = append(cmd.Mounts, c.conf+":/etc/identity:ro")
	cmd.Network = "host" // MariaDB listens on the host's 127.0.0.1
	req := c.h.request(events.MigrationRequested{Service: "keystone", Driver: "mysql", Database: c.url, Phase: phase, Command: &cmd})
	c.sent[req.ID()] = true
	return c.h.final(req)
}

// schema returns the database's identityapp schema version and tables.
func (c *commandEnv) schema(t *testing.T) (string, []string) {
	t.Helper()
	cfg, err := mysql.ParseURL(c.url)
	if err != nil {
		t.Fatal(err)
	}
	db := mytest.Open(t, c.url, cfg.DBName)
	tables := queryStrings(t, db, `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1`)
	v := "none"
	if slices.Contains(tables, "identity_schema") {
		v = queryStrings(t, db, `SELECT CAST(COALESCE(MAX(version), 0) AS CHAR) FROM identity_schema`)[0]
	}
	return v, tables
}

// left lists the containers a test's migrations left on the engine. Only
// its own requests' count: the images are built the same way in every test
// run, so the ancestor filter also matches the containers of another test
// run sharing the engine.
func (c *commandEnv) left(t *testing.T) []string {
	t.Helper()
	res, err := c.cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", "dev.cutover.service=keystone").Add("ancestor", c.image)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ct := range res.Items {
		if c.sent[ct.Labels["dev.cutover.migration"]] {
			out = append(out, ct.Names...)
		}
	}
	return out
}

func TestCommandMigrationSucceeds(t *testing.T) {
	c := newCommandEnv(t)
	fin, all := c.request("", events.MigrationCommand{Command: []string{"db-sync"}, VersionCommand: []string{"db-version"}})
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	done := as[events.MigrationCompleted](t, fin)
	started := as[events.MigrationStarted](t, all[0])
	r := done.Command
	if r == nil || r.ExitCode != 0 || r.Runs != 1 || r.FromSchema != "0" || r.ToSchema != "4" || started.SnapshotID == "" || done.SnapshotID != started.SnapshotID {
		t.Fatalf("completed = %s, want exit 0 after 1 run, schema 0 -> 4, the snapshot named", fin.Data())
	}
	if !slices.ContainsFunc(r.LogTail, func(l string) bool { return strings.Contains(l, "applied step 4") }) {
		t.Errorf("log tail %q lacks the command's output", r.LogTail)
	}
	if raw := string(fin.Data()); strings.Contains(raw, ":"+c.password+"@") {
		t.Errorf("the event shows the database password: %s", raw)
	}
	if !slices.ContainsFunc(r.LogTail, func(l string) bool { return strings.Contains(l, ":xxxxx@127.0.0.1") }) {
		t.Errorf("log tail %q: want the connection line with its password redacted", r.LogTail)
	}
	if v, _ := c.schema(t); v != "4" {
		t.Errorf("schema version %s, want 4", v)
	}
	if left := c.left(t); len(left) != 0 {
		t.Errorf("containers left behind: %v", left)
	}

	// Taking it back is a restore of the snapshot, asked for by name: the
	// version golang-migrate sees did not move. A command migration is
	// never fenced, so the migrator cannot tell db-sync's own rows (its
	// version table, the default domain) from the service's: they count as
	// writes after the snapshot, flagged as possibly the migration's, and
	// the restore is refused with them until asked anyway.
	back := events.MigrationRollbackRequested{Driver: "mysql", Database: c.url, SnapshotID: done.SnapshotID}
	fin, _ = c.h.final(c.h.request(back))
	if f := as[events.MigrationFailed](t, fin); fin.Type() != events.TypeMigrationFailed || !strings.Contains(f.Error, "identity_schema 4 inserted") ||
		f.Restore == nil || !f.Restore.MigrationWritesIncluded {
		t.Fatalf("rollback without restore_anyway: %s %s, want refused with db-sync's writes counted and migration_writes_included", fin.Type(), fin.Data())
	}
	back.RestoreAnyway = true
	fin, _ = c.h.final(c.h.request(back))
	if rb := as[events.MigrationRollbackCompleted](t, fin); fin.Type() != events.TypeMigrationRollbackCompleted || rb.Path != migrator.PathSnapshot ||
		rb.Restore == nil || !rb.Restore.MigrationWritesIncluded {
		t.Fatalf("rollback: %s %s", fin.Type(), fin.Data())
	}
	// (db-version, run before the snapshot, made its own empty table.)
	if v, tables := c.schema(t); v != "0" || slices.Contains(tables, "items") {
		t.Errorf("after the rollback: version %s tables %v, want the schema of before (version 0, no items)", v, tables)
	}
}

// A command that fails midway (its DDL committed) is undone from the
// snapshot while the old container keeps serving; the event says how the
// command ended and what the database is now.
func TestCommandMigrationFailsAndIsRestored(t *testing.T) {
	c := newCommandEnv(t)
	fin, _ := c.request("", events.MigrationCommand{Command: []string{"db-sync"}})
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("first migration: %s %s", fin.Type(), fin.Data())
	}
	// No version command: the schema's fingerprint says what changed.
	if r := as[events.MigrationCompleted](t, fin).Command; !strings.HasPrefix(r.FromSchema, "sha256:") || !strings.HasPrefix(r.ToSchema, "sha256:") || r.FromSchema == r.ToSchema {
		t.Errorf("schema %q -> %q, want two different fingerprints", r.FromSchema, r.ToSchema)
	}
	cfg, _ := mysql.ParseURL(c.url)
	mustExec(t, mytest.Open(t, c.url, cfg.DBName), `INSERT INTO items (id, name, written_by, display_name) VALUES ('a', 'a', 'v2', 'a'), ('b', 'b', 'v2', 'b')`)
	beforeV, beforeTables := c.schema(t)
	old := c.serveOld(t)

	// v3's step 5 creates a table, then fails on the two items v2 wrote.
	fin, _ = c.request("", events.MigrationCommand{Command: []string{"db-sync"}, Env: []string{"DEMO_VERSION=v3", "DB_PASSWORD=hunter22"}})
	if fin.Type() != events.TypeMigrationFailed {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	failed := as[events.MigrationFailed](t, fin)
	if failed.Command == nil || failed.Command.ExitCode != 1 || !strings.Contains(failed.Error, "exited with 1") || !strings.Contains(failed.State, "restored from snapshot") {
		t.Fatalf("failed = %s, want exit 1 and a restore", fin.Data())
	}
	if !strings.HasSuffix(failed.State, "; schema "+failed.Command.FromSchema+" as before the command") {
		t.Errorf("state %q: want the schema it is at again", failed.State)
	}
	if !slices.ContainsFunc(failed.Command.LogTail, func(l string) bool { return strings.Contains(l, "Duplicate entry") }) {
		t.Errorf("log tail %q lacks the command's error", failed.Command.LogTail)
	}
	if strings.Contains(string(fin.Data()), "hunter22") || strings.Contains(string(fin.Data()), ":"+c.password+"@") {
		t.Errorf("the event shows a secret: %s", fin.Data())
	}
	if v, tables := c.schema(t); v != beforeV || !slices.Equal(tables, beforeTables) {
		t.Errorf("after the failure: version %s tables %v, want %s %v (projects, made by the failed step, gone)", v, tables, beforeV, beforeTables)
	}
	if code := get(t, old+"/healthz"); code != http.StatusOK {
		t.Errorf("the old container answers %d after the failed migration, want 200", code)
	}
}

func TestCommandMigrationHangsAndTimesOut(t *testing.T) {
	c := newCommandEnv(t)
	fin, _ := c.request("", events.MigrationCommand{Command: []string{"db-sync"}, Env: []string{"IDENTITY_HANG=1"}, TimeoutSeconds: 2})
	if fin.Type() != events.TypeMigrationFailed {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	failed := as[events.MigrationFailed](t, fin)
	if failed.Command == nil || !failed.Command.TimedOut || failed.Command.ExitCode != -1 || !strings.Contains(failed.Error, "did not finish within 2s") || !strings.Contains(failed.State, "restored from snapshot") {
		t.Fatalf("failed = %s, want a timeout and a restore", fin.Data())
	}
	if left := c.left(t); len(left) != 0 {
		t.Errorf("containers left behind: %v", left)
	}
}

// An image without the command is refused before any snapshot.
func TestCommandMissingFromImageRefusedBeforeSnapshot(t *testing.T) {
	c := newCommandEnv(t)
	fin, all := c.request("", events.MigrationCommand{Image: c.noCmd, Command: []string{"db_sync"}})
	if fin.Type() != events.TypeMigrationFailed || len(all) != 1 {
		t.Fatalf("answers %v, want one migration.failed", all)
	}
	failed := as[events.MigrationFailed](t, fin)
	if !strings.Contains(failed.Error, "/usr/bin/keystone-manage is not in the image") || !strings.Contains(failed.State, "no snapshot taken") {
		t.Errorf("failed = %+v, want the missing program named and no snapshot", failed)
	}
	entries, _ := os.ReadDir(c.dumpDir)
	if len(entries) != 0 {
		t.Errorf("snapshot files after the refusal: %v", entries)
	}
}

// expand, migrate and contract run as three commands, each to its own
// schema version; online data migrations run until the command exits 0.
func TestCommandPhasesAndOnlineDataMigrations(t *testing.T) {
	c := newCommandEnv(t)
	steps := []struct {
		phase    string
		args     []string
		from, to string
	}{
		{migrator.PhaseExpand, []string{"db-sync", "--expand"}, "0", "2"},
	}
	run := func(phase string, args []string, from, to string) events.MigrationCompleted {
		t.Helper()
		fin, _ := c.request(phase, events.MigrationCommand{Command: args, VersionCommand: []string{"db-version"}})
		if fin.Type() != events.TypeMigrationCompleted {
			t.Fatalf("phase %s: %s %s", phase, fin.Type(), fin.Data())
		}
		done := as[events.MigrationCompleted](t, fin)
		if done.Command.FromSchema != from || done.Command.ToSchema != to {
			t.Errorf("phase %s: schema %s -> %s, want %s -> %s", phase, done.Command.FromSchema, done.Command.ToSchema, from, to)
		}
		return done
	}
	for _, s := range steps {
		run(s.phase, s.args, s.from, s.to)
	}
	// The old release writes rows without display_name meanwhile.
	cfg, _ := mysql.ParseURL(c.url)
	db := mytest.Open(t, c.url, cfg.DBName)
	mustExec(t, db, `INSERT INTO items (id, name, written_by) SELECT CONCAT('i', seq), CONCAT('item ', seq), 'v1' FROM seq_1_to_120`)
	fin, _ := c.request(migrator.PhaseMigrate, events.MigrationCommand{Command: []string{"online-data-migrations", "--max-count", "50"}, Repeat: true})
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("online data migrations: %s %s", fin.Type(), fin.Data())
	}
	if r := as[events.MigrationCompleted](t, fin).Command; r.Runs != 4 || r.ExitCode != 0 {
		t.Errorf("online data migrations: %d runs, exit %d; want 4 (50, 50, 20, then none left) and 0", r.Runs, r.ExitCode)
	}
	if n := queryStrings(t, db, `SELECT CAST(COUNT(*) AS CHAR) FROM items WHERE display_name IS NULL`); n[0] != "0" {
		t.Errorf("%s rows left without display_name", n[0])
	}
	run(migrator.PhaseMigrate, []string{"db-sync", "--migrate"}, "2", "3")
	run(migrator.PhaseContract, []string{"db-sync", "--contract"}, "3", "4")
}

// serveOld starts the old release's container, serving on the host's
// network, and returns its base URL.
func (c *commandEnv) serveOld(t *testing.T) string {
	t.Helper()
	addr := natstest.FreeAddr(t)
	created, err := c.cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
		Name:       "cutover-i17-old-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")),
		Config:     &container.Config{Image: c.image, Env: []string{"DEMO_LISTEN=" + addr}, Labels: map[string]string{"dev.cutover.test": "i17"}},
		HostConfig: &container.HostConfig{NetworkMode: "host", Binds: []string{c.conf + ":/etc/identity:ro"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := c.cli.ContainerStart(t.Context(), created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	eventually(t, 20*time.Second, "the old container to serve", func() bool { return get(t, base+"/healthz") == http.StatusOK })
	return base
}

func get(t *testing.T, u string) int {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestMain builds the identityapp binary once, in a directory it removes.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cutover-identityapp-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	identityDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
