package scenario

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/openstack"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/loadgen"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/inventory"
	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
	migdocker "github.com/cutover-dev/cutover/services/migrator/docker"
	"github.com/cutover-dev/cutover/services/planner"
)

// The scenario: three replicas of the identity service (keystone), each on
// its own node and port of the host's network (the MariaDB server listens
// on 127.0.0.1), behind a real HAProxy whose servers cutover's lb-agent
// drains. The first release, v1, is deployed with a bootstrap db-sync.
// Then, under a write-and-read-back load through HAProxy:
//
//  1. v1 -> v2: db-sync --expand before the roll, the roll one replica at a
//     time with drain while v1 and v2 share the database, and after the
//     version barrier db-sync --migrate, the online data migrations until
//     they exit 0, and db-sync --contract;
//  2. v3, whose db-sync --expand fails midway (its first statement
//     committed): the migrator restores the snapshot it took, no replica
//     moves, and v2 keeps serving reads through HAProxy (writes pause for
//     the attempt: the migrator restores only when no write landed after
//     its snapshot, and keeps the database as it is otherwise);
//  3. writes again, on v2.
//
// Then every acknowledged write is read back from MariaDB.

const (
	// osService is the service's name in the inventory.
	osService  = "keystone"
	osReplicas = 3
	// osAfterWrites is how long writes go on on v2 after the failed v3.
	osAfterWrites = 5 * time.Second
	// osBatch is the online data migrations' rows per run.
	osBatch = 100
)

// osConfig describes one run.
type osConfig struct {
	// Run prefixes every name the run creates and labels its containers.
	Run string
	// Server is the MariaDB server (mysql://user:password@host:port/any);
	// the run creates a database of its own on it and drops it after.
	Server string
	// V1, V2, V3 are the identity service's images (DEMO_VERSION v1, v2,
	// v3, with the HEALTHCHECK), already in a registry.
	V1, V2, V3 testkit.Image
	// Rate is the write load in writes per second (each read back, and an
	// earlier one re-read).
	Rate int
	// MinLoad is the least time the load of the v1 -> v2 upgrade runs.
	MinLoad time.Duration
	// WorkDir holds the config directory, HAProxy's files, the snapshots
	// and the stack's data.
	WorkDir string
	// Events receives one line per upgrade event; Progress a load line a
	// second; nil discards them.
	Events, Progress io.Writer
	// Logger receives the services' logs.
	Logger *slog.Logger
}

// osResult is what a run measured.
type osResult struct {
	// Upgrade, Failed are the v1 -> v2 and v3 upgrades.
	Upgrade, Failed osAttempt
	// During, Reads, After are the loads: writes during v1 -> v2, reads
	// during v3, writes after it.
	During, Reads, After loadgen.Result
	// Acked is every acknowledged write (During and After); Missing those
	// not in the database as written.
	Acked   int
	Missing []string
	// Schema is the schema version after the run; Leftovers what the
	// failed v3 left that a restore removes (the projects table).
	Schema    int
	Leftovers []string
	// Images maps each replica to the release it runs after the run.
	Images map[string]string
}

// osAttempt is one upgrade's outcome.
type osAttempt struct {
	ID    string
	Phase string
	// Steps are its migrations as requested and answered, in order.
	Steps []osStep
	// Order is a problem with the order of migrations and node commands.
	Order string
}

// osStep is one migration command of an upgrade.
type osStep struct {
	Phase, Command     string
	From, To, State    string
	Runs               int
	Failed             bool
	Error              string
	requested, settled int
	cause              string // the request's id
}

// runOpenStack runs the scenario and removes what it created (containers, the
// images labelled with the run, the database), except WorkDir. The error is about the
// scenario itself; how the upgrades, loads and data went is in the result.
func runOpenStack(ctx context.Context, cli *client.Client, cfg osConfig) (res osResult, err error) {
	if cfg.Events == nil {
		cfg.Events = io.Discard
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	label := testkit.LabelTest + "=" + cfg.Run
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, testkit.Cleanup(cctx, cli, label))
	}()
	db, err := openstack.CreateDatabase(ctx, cfg.Server, strings.ReplaceAll(cfg.Run, "-", "_"))
	if err != nil {
		return res, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, db.Drop(cctx))
	}()
	conf := filepath.Join(cfg.WorkDir, "etc-identity")
	if err := db.WriteConf(conf); err != nil {
		return res, err
	}
	if err := testkit.PullImage(ctx, cli, cfg.V1.Ref); err != nil {
		return res, err
	}
	fmt.Fprintf(cfg.Progress, "bootstrap: db-sync of v1 in a one-off container on database %s\n", db.Public)
	if err := openstack.Bootstrap(ctx, migdocker.New(cli), cfg.V1.Ref, conf, cfg.Run); err != nil {
		return res, err
	}

	// The replicas, on the host's network: one port each.
	servers, mapping := map[string]string{}, map[string]lbagent.Server{}
	var names, nodes, ids []string
	for i := 1; i <= osReplicas; i++ {
		addr, err := zdFreeAddr()
		if err != nil {
			return res, err
		}
		name, node, srv := fmt.Sprintf("%s-keystone-%d", cfg.Run, i), fmt.Sprintf("%s-node%d", cfg.Run, i), fmt.Sprintf("s%d", i)
		id, err := testkit.CreateContainer(ctx, cli, testkit.ContainerOpts{
			Name: name, Image: cfg.V1.Ref, Node: node, Service: osService, Labels: map[string]string{testkit.LabelTest: cfg.Run},
			Env: []string{"DEMO_LISTEN=" + addr}, Binds: []string{conf + ":" + openstack.ConfMount + ":ro"}, Network: "host",
		})
		if err != nil {
			return res, err
		}
		servers[srv], mapping[name] = addr, lbagent.Server{Backend: zdService, Server: srv}
		names, nodes, ids = append(names, name), append(nodes, node), append(ids, id)
	}
	for i, id := range ids {
		if _, err := testkit.WaitHealth(ctx, cli, id, "healthy"); err != nil {
			return res, fmt.Errorf("wait for v1 replica %s to be healthy: %w", names[i], err)
		}
	}
	hpDir := filepath.Join(cfg.WorkDir, "haproxy")
	if err := os.MkdirAll(hpDir, 0o755); err != nil {
		return res, fmt.Errorf("create %s: %w", hpDir, err)
	}
	// Retries off: a request sent to a replica that is gone fails, so zero
	// failures is owed to the drain.
	hp, front, err := zdStartHAProxy(ctx, hpDir, servers, true)
	if err != nil {
		return res, err
	}
	defer hp.Close()

	inv := &inventory.Inventory{
		Nodes: map[string]inventory.Node{},
		Roles: map[string]inventory.Role{osService: {Services: []string{osService}}},
		Services: map[string]inventory.Service{osService: {
			Containers: []inventory.Container{{Name: osService, Image: cfg.V1.Ref}},
			Database:   &inventory.Database{Driver: "mariadb", URL: db.Public, Commands: openstack.Commands(conf, osBatch, 2*time.Minute)},
		}},
	}
	for _, n := range nodes {
		inv.Nodes[n] = inventory.Node{Roles: []string{osService}}
	}
	s, err := stack.Start(ctx, stack.Config{
		DataDir: filepath.Join(cfg.WorkDir, "data"), NATSListen: "127.0.0.1:0", Docker: cli, Nodes: nodes,
		Inventory: inv, Databases: db.Allowed(osService), MySQLDumpDir: filepath.Join(cfg.WorkDir, "snapshots"),
		AgentVersion: "demo-openstack", Logger: cfg.Logger,
	})
	if err != nil {
		return res, err
	}
	defer s.Close(context.WithoutCancel(ctx))
	if err := s.WaitNodes(ctx, nodes); err != nil {
		return res, err
	}
	agent, err := lbagent.New(lbagent.Config{Servers: mapping, DrainTimeout: zdDrainAckTimeout, Logger: cfg.Logger.With("service", "lb-agent")}, s.JetStream(), hp.Client)
	if err != nil {
		return res, err
	}
	if err := agent.Start(ctx); err != nil {
		return res, err
	}
	defer agent.Close(context.WithoutCancel(ctx))

	base := "http://" + front
	fmt.Fprintf(cfg.Progress, "\n[1/3] v1 -> v2: expand, roll with drain, migrate, online data migrations, contract; %d writes/s through HAProxy\n", cfg.Rate)
	load := zdStartLoad(ctx, loadgen.Config{URL: base + "/", Rate: cfg.Rate, Items: &loadgen.Items{IDPrefix: cfg.Run + "-"}}, cfg.Progress)
	defer load.stop()
	if err := load.warmUp(ctx); err != nil {
		return res, err
	}
	if res.Upgrade, err = osUpgrade(ctx, s.JetStream(), cfg.Events, events.ServiceRelease{Image: cfg.V2.Ref, MinHealthyMs: 1000, DrainAckTimeoutMs: zdDrainAckTimeout.Milliseconds()}, "v2"); err != nil {
		return res, err
	}
	if res.During, err = load.finish(ctx, cfg.MinLoad, cfg.Progress); err != nil {
		return res, err
	}

	fmt.Fprintf(cfg.Progress, "\n[2/3] v3, whose db-sync --expand fails midway; %d reads/s through HAProxy (writes pause: a restore would take them out)\n", cfg.Rate)
	reads := zdStartLoad(ctx, loadgen.Config{URL: base + "/healthz", Rate: cfg.Rate}, cfg.Progress)
	defer reads.stop()
	if res.Failed, err = osUpgrade(ctx, s.JetStream(), cfg.Events, events.ServiceRelease{Image: cfg.V3.Ref, MinHealthyMs: 1000, DrainAckTimeoutMs: zdDrainAckTimeout.Milliseconds()}, "v3"); err != nil {
		return res, err
	}
	if res.Reads, err = reads.finish(ctx, 0, cfg.Progress); err != nil {
		return res, err
	}

	fmt.Fprintf(cfg.Progress, "\n[3/3] writes again on v2 for %s\n", osAfterWrites)
	after := zdStartLoad(ctx, loadgen.Config{URL: base + "/", Rate: cfg.Rate, Items: &loadgen.Items{IDPrefix: cfg.Run + "-after-"}}, cfg.Progress)
	defer after.stop()
	if res.After, err = after.finish(ctx, osAfterWrites, io.Discard); err != nil {
		return res, err
	}

	if res.Images, err = zdVersions(ctx, cli, names, cfg.V1, cfg.V2); err != nil {
		return res, err
	}
	return res, osReadBack(ctx, db, &res)
}

// osReadBack checks every acknowledged write in the database, and what the
// schema is.
func osReadBack(ctx context.Context, d *openstack.Database, res *osResult) error {
	db, err := d.Open()
	if err != nil {
		return err
	}
	defer db.Close()
	if res.Schema, err = openstack.SchemaVersion(ctx, db); err != nil {
		return err
	}
	res.Leftovers = nil
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'projects'`).Scan(&n); err != nil {
		return fmt.Errorf("look for v3's table: %w", err)
	}
	if n > 0 {
		res.Leftovers = append(res.Leftovers, "table projects (v3's, committed before its db-sync failed)")
	}
	acked := append(append([]loadgen.Ack(nil), res.During.Acked...), res.After.Acked...)
	res.Acked = len(acked)
	stmt, err := db.PrepareContext(ctx, `SELECT name, written_by, display_name FROM items WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("read the writes back: %w", err)
	}
	defer stmt.Close()
	for _, a := range acked {
		var name, by string
		var display sql.NullString
		err := stmt.QueryRowContext(ctx, a.ID).Scan(&name, &by, &display)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res.Missing = append(res.Missing, fmt.Sprintf("%s (written by %s): not in the database", a.ID, a.WrittenBy))
		case err != nil:
			return fmt.Errorf("read write %s back: %w", a.ID, err)
		case name != a.Name || by != a.WrittenBy || display.String != a.Name:
			res.Missing = append(res.Missing, fmt.Sprintf("%s: name %q by %s display_name %q; want %q by %s, display_name filled", a.ID, name, by, display.String, a.Name, a.WrittenBy))
		}
	}
	return nil
}

// osUpgrade asks for release rel of the service, prints its events until
// it ends and returns its outcome.
func osUpgrade(ctx context.Context, js jetstream.JetStream, w io.Writer, target events.ServiceRelease, rel string) (osAttempt, error) {
	req, err := events.New(events.Source("cli", ""), events.UpgradeRequested{
		RequestedBy: "cutover demo-openstack",
		Release:     events.Release{Name: osService + "-" + rel, Services: map[string]events.ServiceRelease{osService: target}},
	})
	if err != nil {
		return osAttempt{}, err
	}
	at := osAttempt{ID: req.ID()}
	if err := events.NewPublisher(js).Publish(ctx, req); err != nil {
		return at, err
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	firstNode, lastNode, i := -1, -1, 0
	// Follow calls back on this goroutine; it fails for an upgrade that
	// did not complete, which v3's is meant not to.
	ferr := upgrades.Follow(fctx, js, at.ID, indent{w}, func(e events.Event) {
		i++
		switch e.Type() {
		case events.TypeNodeUpdateRequested:
			if firstNode < 0 {
				firstNode = i
			}
		case events.TypeNodeUpdateCompleted:
			lastNode = i
		case events.TypeMigrationRequested:
			if d, err := events.DataAs[events.MigrationRequested](e); err == nil && d.Command != nil {
				at.Steps = append(at.Steps, osStep{Phase: d.Phase, Command: strings.Join(d.Command.Command, " "), requested: i, settled: -1, cause: e.ID()})
			}
		case events.TypeMigrationCompleted:
			if st := at.step(e); st != nil {
				d, _ := events.DataAs[events.MigrationCompleted](e)
				st.settled = i
				if d.Command != nil {
					st.From, st.To, st.Runs = d.Command.FromSchema, d.Command.ToSchema, d.Command.Runs
				}
			}
		case events.TypeMigrationFailed:
			if st := at.step(e); st != nil {
				d, _ := events.DataAs[events.MigrationFailed](e)
				st.settled, st.Failed, st.Error, st.State = i, true, d.Error, d.State
				if c := d.Command; c != nil {
					st.From, st.Runs = c.FromSchema, c.Runs
					if len(c.LogTail) > 0 {
						st.Error += " (last output: " + c.LogTail[len(c.LogTail)-1] + ")"
					}
				}
			}
		}
	})
	u, err := planner.LoadUpgrade(ctx, js, at.ID)
	if err != nil || !u.Final() {
		return at, fmt.Errorf("follow upgrade %s: %w", at.ID, errors.Join(ferr, err, fctx.Err()))
	}
	at.Phase = string(u.Phase)
	at.Order = osCheckOrder(at.Steps, firstNode, lastNode)
	return at, nil
}

// step is the step e answers.
func (a *osAttempt) step(e events.Event) *osStep {
	for i := range a.Steps {
		if a.Steps[i].cause == events.CausationID(e) {
			return &a.Steps[i]
		}
	}
	return nil
}

// osCheckOrder says what is wrong with the order of an upgrade's events:
// the expand must be answered before the first node command, every later
// step asked after the last node answer.
func osCheckOrder(steps []osStep, firstNode, lastNode int) string {
	for _, st := range steps {
		switch {
		case st.Phase == "expand" && firstNode >= 0 && (st.settled < 0 || st.settled > firstNode):
			return fmt.Sprintf("%s was answered at event %d, after the first node command (%d)", st.Command, st.settled, firstNode)
		case st.Phase != "expand" && st.requested < lastNode:
			return fmt.Sprintf("%s was asked at event %d, before the last node answer (%d)", st.Command, st.requested, lastNode)
		}
	}
	return ""
}

// problems lists what went wrong in a run; empty when it passed: the v1 ->
// v2 upgrade completed with its four migration steps in order around the
// roll, every replica runs v2, v3's db-sync failed and its database was
// restored (schema 4, nothing of v3 left) while no replica moved, no
// request failed, and every acknowledged write is in MariaDB.
func (r osResult) problems() []string {
	var out []string
	if r.Upgrade.Phase != string(planner.PhaseCompleted) {
		out = append(out, fmt.Sprintf("the v1 -> v2 upgrade ended %s, want completed", r.Upgrade.Phase))
	}
	var got []string
	for _, st := range r.Upgrade.Steps {
		got = append(got, st.Phase+": "+st.Command)
		if st.Failed {
			out = append(out, fmt.Sprintf("v2's %s failed: %s", st.Command, st.Error))
		}
	}
	want := []string{"expand: db-sync --expand", "migrate: db-sync --migrate", fmt.Sprintf("migrate: online-data-migrations --max-count %d", osBatch), "contract: db-sync --contract"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		out = append(out, fmt.Sprintf("v2's migrations %q, want %q", got, want))
	}
	if r.Upgrade.Order != "" {
		out = append(out, "v2: "+r.Upgrade.Order)
	}
	if len(r.Failed.Steps) != 1 || !r.Failed.Steps[0].Failed || !strings.Contains(r.Failed.Steps[0].State, "restored from snapshot") {
		out = append(out, fmt.Sprintf("v3's migrations %+v: want one db-sync --expand, failed and restored from its snapshot", r.Failed.Steps))
	}
	if r.Failed.Phase == string(planner.PhaseCompleted) {
		out = append(out, "the v3 upgrade completed; want it failed")
	}
	if r.Schema != 4 || len(r.Leftovers) > 0 {
		out = append(out, fmt.Sprintf("schema version %d, left over %v; want 4 (v2's) and nothing of v3", r.Schema, r.Leftovers))
	}
	for name, v := range r.Images {
		if v != "v2" {
			out = append(out, fmt.Sprintf("%s runs %s, want v2", name, v))
		}
	}
	if len(r.Images) != osReplicas {
		out = append(out, fmt.Sprintf("%d replicas, want %d", len(r.Images), osReplicas))
	}
	for _, l := range []struct {
		name string
		r    loadgen.Result
	}{{"writes during v1 -> v2", r.During}, {"reads during v3", r.Reads}, {"writes after v3", r.After}} {
		if l.r.Sent == 0 || l.r.Failed > 0 {
			out = append(out, fmt.Sprintf("%s: %d of %d requests failed (%s)", l.name, l.r.Failed, l.r.Sent, render.Counts(l.r.Errors)))
		}
	}
	if n := osByWriter(r.During.Acked); n["v1"] == 0 || n["v2"] == 0 {
		out = append(out, fmt.Sprintf("writes by release during v1 -> v2: %s; want both v1 and v2", render.Counts(n)))
	}
	const maxListed = 10
	for i, m := range r.Missing {
		if i == maxListed {
			out = append(out, fmt.Sprintf("... %d lost or wrong writes in all", len(r.Missing)))
			break
		}
		out = append(out, "lost write "+m)
	}
	return out
}

func osByWriter(acked []loadgen.Ack) map[string]int {
	n := map[string]int{}
	for _, a := range acked {
		n[a.WrittenBy]++
	}
	return n
}

// summary prints what the run did and measured.
func (r osResult) summary(w io.Writer) {
	fmt.Fprintln(w, "\nsummary:")
	fmt.Fprintf(w, "  v1 -> v2: upgrade %s\n", r.Upgrade.Phase)
	for _, st := range r.Upgrade.Steps {
		runs := ""
		if st.Runs > 1 {
			runs = fmt.Sprintf(", %d runs", st.Runs)
		}
		fmt.Fprintf(w, "    %-8s %-40s schema %s -> %s%s\n", st.Phase, st.Command, st.From, st.To, runs)
	}
	fmt.Fprintf(w, "  v3: upgrade %s\n", r.Failed.Phase)
	for _, st := range r.Failed.Steps {
		fmt.Fprintf(w, "    %-8s %-40s failed: %s\n             database now: %s\n", st.Phase, st.Command, st.Error, st.State)
	}
	fmt.Fprintf(w, "  replicas: %s; schema version %d; left of v3: %d\n", render.Counts(osCount(r.Images)), r.Schema, len(r.Leftovers))
	fmt.Fprintf(w, "  writes during v1 -> v2: %s (by release %s)\n", r.During, render.Counts(osByWriter(r.During.Acked)))
	fmt.Fprintf(w, "  reads during v3:        %s\n", r.Reads)
	fmt.Fprintf(w, "  writes after v3:        %s\n", r.After)
	failed := r.During.Failed + r.Reads.Failed + r.After.Failed
	fmt.Fprintf(w, "  acknowledged writes read back from MariaDB: %d of %d\n", r.Acked-len(r.Missing), r.Acked)
	fmt.Fprintf(w, "  failed requests: %d   lost writes: %d\n", failed, len(r.Missing))
}

func osCount(m map[string]string) map[string]int {
	n := map[string]int{}
	for _, v := range m {
		n[v]++
	}
	return n
}
