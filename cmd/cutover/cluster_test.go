package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/rehearsal"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/auditor"
	auditsqlite "github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/migrator"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
	"github.com/cutover-dev/cutover/services/planner"
)

// clusterClient is one service's connection to the test cluster and the
// logs it wrote.
type clusterClient struct {
	name string
	nc   *nats.Conn
	logs *natstest.Logs
	// server is the server it was connected to before a kill, lost and
	// regained how often it had logged losing and regaining the bus.
	server         string
	lost, regained int
}

func (cl *clusterClient) count(line string) int { return strings.Count(cl.logs.String(), line) }

// clusterReplicas is the replica count the cluster test asks for: 3, or
// CUTOVER_CLUSTER_REPLICAS to show what one replica does (the upgrade
// stalls on the first kill, see docs/architecture.md).
func clusterReplicas(t *testing.T) int {
	v := os.Getenv("CUTOVER_CLUSTER_REPLICAS")
	if v == "" {
		return 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 3 {
		t.Fatalf("CUTOVER_CLUSTER_REPLICAS=%q: want 1, 2 or 3", v)
	}
	return n
}

// TestClusterSurvivesServerLoss runs the real planner, migrator, auditor
// and node-updaters (simulated runtime) on a 3-server JetStream cluster
// with the stream and buckets replicated 3 times, each service on its own
// connection given every server's URL. Mid-upgrade it shuts down hard the
// server leading the CUTOVER stream, restarts it once the upgrade moved on
// without it and checks it caught up; then it does the same to the server
// leading the planner's bucket. The upgrade completes with every
// container replaced once, no step repeated, the auditor's history holding
// every event of the upgrade once, every durable consumer kept, and the
// services that were on a killed server logging that they lost and
// regained the bus.
func TestClusterSurvivesServerLoss(t *testing.T) {
	replicas := clusterReplicas(t)
	t.Logf("3 servers; the stream and buckets with %d replicas", replicas)
	c := natstest.StartCluster(t, 3)
	servers := strings.Split(c.URLs(), ",")
	var clients []*clusterClient
	// connect gives each service its own connection, pinned to a first
	// server in turn (nats.DontRandomize) so every server has clients to
	// lose; the list holds every server, as a deployment's --nats does.
	connect := func(name string) (jetstream.JetStream, *slog.Logger) {
		t.Helper()
		k := len(clients) % len(servers)
		urls := strings.Join(append(append([]string{}, servers[k:]...), servers[:k]...), ",")
		cl := &clusterClient{name: name, logs: &natstest.Logs{}}
		log := slog.New(slog.NewTextHandler(cl.logs, nil)).With("service", name)
		nc, js, err := events.Connect(t.Context(), events.ClientConfig{URL: urls}, "cutover-"+name,
			events.WithSetup(events.SetupConfig{Replicas: replicas, RaiseReplicas: true}), events.WithLogger(log), events.WithNATSOptions(nats.DontRandomize()))
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		t.Cleanup(nc.Close)
		cl.nc = nc
		clients = append(clients, cl)
		return js, log
	}

	const nodes, services = 4, 3
	inv, req := rehearsal.GeneratedFleet(nodes, services, "1")
	migrations, dbPath, db := sqliteWithMigrations(t, map[string]string{
		"0001_orders.expand.up.sql":     "CREATE TABLE orders (id INTEGER PRIMARY KEY);",
		"0001_orders.expand.down.sql":   "DROP TABLE orders;",
		"0002_legacy.contract.up.sql":   "DROP TABLE legacy;",
		"0002_legacy.contract.down.sql": "CREATE TABLE legacy (id INTEGER);",
	}, "CREATE TABLE legacy (id INTEGER)")
	svc := inv.Services[sim.ServiceName(0)]
	svc.Database = &inventory.Database{Driver: "sqlite", URL: dbPath, Migrations: migrations}
	inv.Services[sim.ServiceName(0)] = svc
	rel := req.Release.Services[sim.ServiceName(0)]
	rel.MigrationsVersion = 2
	req.Release.Services[sim.ServiceName(0)] = rel

	ojs, _ := connect("observer")
	ajs, alog := connect("auditor")
	store, err := auditsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	aud, err := auditor.New(auditor.Config{Logger: alog}, ajs, store)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "auditor", aud.Start, aud.Close)
	mjs, mlog := connect("migrator")
	mig, err := migrator.New(migrator.Config{Logger: mlog, Drivers: map[string]migrator.Driver{"sqlite": migsqlite.Driver{}}}, mjs)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "migrator", mig.Start, mig.Close)
	pjs, plog := connect("planner")
	p, err := planner.New(t.Context(), planner.Config{Inventory: inv, Logger: plog, PollInterval: 100 * time.Millisecond}, pjs)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, "planner", p.Start, p.Close)
	// The node-updaters run on simulated nodes whose replacements the test
	// lets through a few at a time, so that each kill lands mid-upgrade
	// with a replacement in progress however fast the machine is.
	pace := &pacer{tokens: make(chan struct{}, nodes*services)}
	runtimes := map[string]*sim.Runtime{}
	for _, n := range sim.Generate(nodes, services, func(s string) string { return "sim.local/" + s + ":1" }) {
		js, log := connect("node-updater-" + n.Name)
		rt, err := sim.New(sim.Config{Node: n.Name, Seed: 1}, n.Containers)
		if err != nil {
			t.Fatal(err)
		}
		u, err := nodeupdater.New(nodeupdater.Config{Node: n.Name, AgentVersion: "sim", Logger: log}, js, pacedRuntime{rt, pace})
		if err != nil {
			t.Fatal(err)
		}
		startService(t, "node-updater "+n.Name, u.Start, u.Close)
		runtimes[n.Name] = rt
	}
	consumers := durableConsumers(t, ojs)

	rec := recordStream(t, ojs)
	e := events.MustNew(events.Source("cli", ""), req)
	natstest.Publish(t, ojs, e)
	id := e.ID()
	// kill lets n replacements through, waits until they are done and the
	// next one is held mid-way (its old container stopped), then shuts the
	// leader of stream down and returns the server's index.
	kill := func(stream string, n int) int {
		t.Helper()
		pace.allow(n - pace.allowed)
		rec.waitFor(t, fmt.Sprintf("%d containers replaced", n), func(r streamRecord) bool { return r.count(events.TypeContainerReplaced) >= n })
		natstest.Eventually(t, time.Minute, "a replacement held mid-way", func() bool { return pace.waiting.Load() > 0 })
		leader := c.WaitStreamLeader(stream)
		name := fmt.Sprintf("n%d", leader)
		for _, cl := range clients {
			cl.server, cl.lost, cl.regained = cl.nc.ConnectedServerName(), cl.count("lost the bus"), cl.count("regained the bus")
		}
		c.Kill(leader)
		t.Logf("killed %s, the leader of %s, after %d replacements", name, stream, n)
		// Every service that was on it says so, and that it is back.
		var on []string
		for _, cl := range clients {
			if cl.server != name {
				continue
			}
			on = append(on, cl.name)
			natstest.Eventually(t, 30*time.Second, cl.name+" to log that it regained the bus", func() bool {
				return cl.count("regained the bus") == cl.regained+1
			})
			if cl.count("lost the bus") != cl.lost+1 {
				t.Errorf("%s was on %s and never logged that it lost the bus:\n%s", cl.name, name, cl.logs.String())
			}
		}
		if len(on) == 0 {
			t.Fatalf("no service was connected to %s: the connections are not spread over the servers", name)
		}
		t.Logf("%s logged losing and regaining the bus", strings.Join(on, ", "))
		return leader
	}
	// restart lets the upgrade go on without the killed server up to n
	// replacements, then restarts it and waits until it caught up.
	restart := func(i, n int) {
		t.Helper()
		pace.allow(n - pace.allowed)
		rec.waitFor(t, fmt.Sprintf("%d containers replaced without the killed server", n), func(r streamRecord) bool {
			return r.count(events.TypeContainerReplaced) >= n
		})
		c.Restart(i)
		for _, s := range []string{events.StreamName, "KV_" + events.BucketUpgrades, "KV_" + events.BucketProcessed} {
			c.WaitCaughtUp(i, s)
		}
		t.Logf("restarted n%d: it caught up", i)
	}
	first := kill(events.StreamName, 2)
	restart(first, 5)
	second := kill("KV_"+events.BucketUpgrades, 7)
	restart(second, 9)
	pace.allow(nodes*services - pace.allowed)

	rec.waitFor(t, "the upgrade to end", streamRecord.final)
	// One more round: the stream holds everything the upgrade produced.
	var u *planner.Upgrade
	natstest.Eventually(t, 30*time.Second, "the planner's state to settle", func() bool {
		u, err = planner.LoadUpgrade(t.Context(), ojs, id)
		return err == nil && u.Final() && len(u.Outbox) == 0
	})
	if u.Phase != planner.PhaseCompleted {
		t.Fatalf("upgrade %s: %s", u.Phase, u.Reason)
	}
	r := rec.snapshot()
	r.checkOnce(t, id)
	replaced := map[string]int{}
	for _, e := range r.ofUpgrade(id) {
		if e.Type() == events.TypeContainerReplaced {
			d, err := events.DataAs[events.ContainerReplaced](e)
			if err != nil {
				t.Fatal(err)
			}
			replaced[events.NodeID(e)+"/"+d.Container]++
		}
	}
	for k, n := range replaced {
		if n != 1 {
			t.Errorf("container %s replaced %d times, want once", k, n)
		}
	}
	if len(replaced) != nodes*services {
		t.Errorf("%d containers replaced, want %d", len(replaced), nodes*services)
	}
	var version int
	if err := db.QueryRow("SELECT version FROM schema_migrations").Scan(&version); err != nil || version != 2 {
		t.Errorf("database at version %d (%v), want 2: expand and contract ran", version, err)
	}
	for n, rt := range runtimes {
		if st := rt.Stats(); st.Creates != services {
			t.Errorf("node %s: %d containers created, want %d (one per container)", n, st.Creates, services)
		}
	}
	natstest.Eventually(t, 30*time.Second, "the auditor to store every event of the upgrade", func() bool {
		recs, err := store.Events(t.Context(), id)
		return err == nil && len(recs) >= len(r.ofUpgrade(id))
	})
	recs, err := store.Events(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]int{}
	for _, rc := range recs {
		stored[rc.ID]++
	}
	for _, ev := range r.ofUpgrade(id) {
		if stored[ev.ID()] != 1 {
			t.Errorf("the auditor stored %s (%s) %d times, want once", ev.ID(), ev.Type(), stored[ev.ID()])
		}
	}
	if len(recs) != len(r.ofUpgrade(id)) {
		t.Errorf("the auditor's history of the upgrade holds %d events, the stream %d", len(recs), len(r.ofUpgrade(id)))
	}
	after := durableConsumers(t, ojs)
	for name, created := range consumers {
		if got, ok := after[name]; !ok || !got.Equal(created) {
			t.Errorf("durable consumer %s: created %v, now %v (present %v); want the same consumer kept", name, created, got, ok)
		}
	}
	// A killed server holds its copy of the stream again.
	for _, i := range []int{first, second} {
		c.WaitCaughtUp(i, events.StreamName)
	}
}

// pacer holds a simulated fleet's replacements back until the test allows
// them, one token each.
type pacer struct {
	tokens  chan struct{}
	allowed int // tokens given, on the test's goroutine
	waiting atomic.Int32
}

func (p *pacer) allow(n int) {
	for range n {
		p.tokens <- struct{}{}
	}
	p.allowed += n
}

// pacedRuntime is a simulated node whose replacements wait for the pacer
// between stopping the old container and creating the new one.
type pacedRuntime struct {
	*sim.Runtime
	pace *pacer
}

func (r pacedRuntime) CreateReplacement(ctx context.Context, oldID, name, image string, labels map[string]string) (string, error) {
	r.pace.waiting.Add(1)
	defer r.pace.waiting.Add(-1)
	select {
	case <-r.pace.tokens:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return r.Runtime.CreateReplacement(ctx, oldID, name, image, labels)
}

// durableConsumers returns the creation time of every durable consumer of
// the stream.
func durableConsumers(t *testing.T, js jetstream.JetStream) map[string]time.Time {
	t.Helper()
	s, err := js.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	l := s.ListConsumers(t.Context())
	for ci := range l.Info() {
		if ci.Config.Durable != "" {
			out[ci.Name] = ci.Created
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// streamRecorder keeps every event of the stream in stream order, read by
// an ordered consumer that follows the stream across leader changes.
type streamRecorder struct {
	mu     sync.Mutex
	r      streamRecord
	change chan struct{}
}

// streamRecord is what the stream held at one moment.
type streamRecord struct {
	events []events.Event
	seqs   []uint64
}

func recordStream(t *testing.T, js jetstream.JetStream) *streamRecorder {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &streamRecorder{change: make(chan struct{}, 1)}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		e, err := events.Decode(m.Headers(), m.Data())
		if err != nil {
			return
		}
		rec.mu.Lock()
		rec.r.events = append(rec.r.events, e)
		rec.r.seqs = append(rec.r.seqs, meta.Sequence.Stream)
		rec.mu.Unlock()
		select {
		case rec.change <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return rec
}

func (rec *streamRecorder) snapshot() streamRecord {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return streamRecord{events: append([]events.Event{}, rec.r.events...), seqs: append([]uint64{}, rec.r.seqs...)}
}

// waitFor waits up to a minute for cond to hold on the stream's events.
func (rec *streamRecorder) waitFor(t *testing.T, what string, cond func(streamRecord) bool) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		r := rec.snapshot()
		if cond(r) {
			return
		}
		select {
		case <-rec.change:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waited a minute for %s; the upgrade stalled after %d events (%d containers replaced), last %s",
				what, len(r.events), r.count(events.TypeContainerReplaced), r.last())
		}
	}
}

func (r streamRecord) count(typ string) int {
	n := 0
	for _, e := range r.events {
		if e.Type() == typ {
			n++
		}
	}
	return n
}

func (r streamRecord) final() bool {
	return r.count(events.TypeUpgradeCompleted)+r.count(events.TypeUpgradeFailed)+r.count(events.TypeUpgradeAborted) > 0
}

func (r streamRecord) last() string {
	if len(r.events) == 0 {
		return "none"
	}
	return r.events[len(r.events)-1].Type()
}

func (r streamRecord) ofUpgrade(id string) []events.Event {
	var out []events.Event
	for _, e := range r.events {
		if events.UpgradeOf(e) == id {
			out = append(out, e)
		}
	}
	return out
}

// checkOnce fails the test when the stream holds an event twice (by id,
// or by step: the same command or result for the same node, container,
// wave or migration phase under a new id).
func (r streamRecord) checkOnce(t *testing.T, upgrade string) {
	t.Helper()
	ids := map[string]uint64{}
	steps := map[string]uint64{}
	for i, e := range r.events {
		if prev, dup := ids[e.ID()]; dup {
			t.Errorf("event %s (%s) stored twice, at sequences %d and %d", e.ID(), e.Type(), prev, r.seqs[i])
		}
		ids[e.ID()] = r.seqs[i]
		if events.UpgradeOf(e) != upgrade || e.Type() == events.TypeNodeHeartbeat {
			continue
		}
		key := e.Type() + " " + e.Subject() + " " + events.NodeID(e) + " " + string(e.Data())
		if prev, dup := steps[key]; dup {
			t.Errorf("step repeated at sequences %d and %d: %s", prev, r.seqs[i], key)
		}
		steps[key] = r.seqs[i]
	}
}

// TestCLINamesTheServersItTried: when no server of --nats answers, every
// command that talks to NATS says which servers it tried, with the
// credentials in the URLs redacted, and what to check.
func TestCLINamesTheServersItTried(t *testing.T) {
	t.Setenv("CUTOVER_DATA", t.TempDir()) // no cutover dev credentials to pick up
	a, b := natstest.FreeAddr(t), natstest.FreeAddr(t)
	urls := "nats://" + a + ",nats://ops:s3cret@" + b
	for _, args := range [][]string{{"list"}, {"nodes"}, {"locks"}, {"status", "some-upgrade"}} {
		r := runCLI(t.Context(), append(args, "--nats", urls)...)
		if r.code == 0 {
			t.Errorf("cutover %s with no server up: exit 0", args[0])
		}
		for _, want := range []string{"tried nats://" + a + ", nats://ops:REDACTED@" + b, "is a server running there"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("cutover %s: stderr lacks %q:\n%s", args[0], want, r.stderr)
			}
		}
		if strings.Contains(r.stdout+r.stderr, "s3cret") {
			t.Errorf("cutover %s printed the password:\n%s%s", args[0], r.stdout, r.stderr)
		}
	}
}
