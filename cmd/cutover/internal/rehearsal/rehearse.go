package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
	"github.com/cutover-dev/cutover/services/planner"
	"github.com/cutover-dev/cutover/services/planner/manifest"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// Options are the flags of cutover rehearse.
type Options struct {
	File           string
	InventoryFile  string
	Nodes          int
	Services       int
	MaxUnavailable string
	FailureRate    float64
	Seed           int64
	Latency        string
	FailureAction  string
	Timeout        time.Duration
	Conns          int
	MaxPayload     int
	Quiet          bool
	Debug          bool
}

// Rehearse runs an upgrade against a simulated fleet: embedded NATS, the
// real planner and one real node-updater per node on the sim runtime. It
// exits 0 when the safety invariants held (whether the upgrade completed or
// rolled back), 1 when one was violated or the rehearsal could not run.
func Rehearse(ctx context.Context, out io.Writer, o Options) error {
	lat, err := parseLatencies(o.Latency)
	if err != nil {
		return err
	}
	if o.FailureRate < 0 || o.FailureRate > 1 {
		return fmt.Errorf("--failure-rate %v: give a probability between 0 and 1, e.g. 0.05", o.FailureRate)
	}
	cfg := rehearsalConfig{
		Seed: o.Seed, Latency: lat, Failures: sim.Spread(o.FailureRate), FailureRate: o.FailureRate,
		Conns: o.Conns, MaxPayload: int32(o.MaxPayload), Logger: rehearseLogger(o.Debug),
	}
	if !o.Quiet {
		cfg.Progress = out
	}
	switch {
	case o.Nodes > 0 && (o.File != "" || o.InventoryFile != ""):
		return exit.Usagef("give either --nodes (a generated fleet) or -f and --inventory, not both")
	case o.Nodes > 0:
		cfg.Inventory, cfg.Request = GeneratedFleet(o.Nodes, o.Services, o.MaxUnavailable)
	case o.File != "" && o.InventoryFile != "":
		req, err := manifest.Load(o.File)
		if err != nil {
			return err
		}
		inv, err := inventory.Load(o.InventoryFile)
		if err != nil {
			return err
		}
		cfg.Inventory, cfg.Request = inv, req
	default:
		return exit.Usagef("give -f release.yaml --inventory inventory.yaml, or --nodes N [--services M] for a generated fleet")
	}
	cfg.Request.RequestedBy = "cutover rehearse"
	cfg.Request.FailureAction = o.FailureAction
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	rep, err := rehearse(ctx, cfg)
	if err != nil {
		return err
	}
	rep.Text(out)
	if len(rep.Violations) > 0 {
		return exit.Error{Code: 1}
	}
	return nil
}

// rehearseLogger shows errors only (a failing release makes every
// node-updater warn), unless --debug asks for all.
func rehearseLogger(debug bool) *slog.Logger {
	level := slog.LevelError
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// parseLatencies reads step=dist pairs separated by commas; a normal
// distribution's own comma is told apart by what follows it.
func parseLatencies(s string) (sim.Latencies, error) {
	var l sim.Latencies
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	var parts []string
	for _, p := range strings.Split(s, ",") {
		if !strings.Contains(p, "=") && len(parts) > 0 {
			parts[len(parts)-1] += "," + p // normal:mean,stddev
			continue
		}
		parts = append(parts, p)
	}
	for _, p := range parts {
		step, spec, ok := strings.Cut(p, "=")
		if !ok {
			return l, fmt.Errorf("--latency %q: write step=distribution, e.g. pull=2s-10s", p)
		}
		d, err := sim.ParseDist(spec)
		if err != nil {
			return l, fmt.Errorf("--latency %s: %w", step, err)
		}
		switch strings.TrimSpace(step) {
		case "pull":
			l.Pull = d
		case "stop":
			l.Stop = d
		case "start":
			l.Start = d
		case "health":
			l.Health = d
		default:
			return l, fmt.Errorf("--latency: unknown step %q; use pull, stop, start or health", step)
		}
	}
	return l, nil
}

// GeneratedFleet returns an inventory of nodes nodes, each running services
// services (one container each, image sim.local/<svc>:1, the given
// max_unavailable) and a release moving every service to :2.
func GeneratedFleet(nodes, services int, maxUnavailable string) (*inventory.Inventory, events.UpgradeRequested) {
	inv := &inventory.Inventory{Nodes: map[string]inventory.Node{}, Roles: map[string]inventory.Role{}, Services: map[string]inventory.Service{}}
	req := events.UpgradeRequested{Release: events.Release{Name: fmt.Sprintf("sim-%dx%d", nodes, services), Services: map[string]events.ServiceRelease{}}}
	var svcs []string
	for i := range services {
		s := sim.ServiceName(i)
		svcs = append(svcs, s)
		inv.Services[s] = inventory.Service{MaxUnavailable: maxUnavailable, Containers: []inventory.Container{{Name: s, Image: "sim.local/" + s + ":1"}}}
		req.Release.Services[s] = events.ServiceRelease{Image: "sim.local/" + s + ":2"}
	}
	inv.Roles["sim"] = inventory.Role{Services: svcs}
	for _, n := range sim.Generate(nodes, 0, nil) {
		inv.Nodes[n.Name] = inventory.Node{Roles: []string{"sim"}}
	}
	return inv, req
}

// rehearsalConfig configures one rehearsal.
type rehearsalConfig struct {
	Inventory   *inventory.Inventory
	Request     events.UpgradeRequested
	Seed        int64
	Latency     sim.Latencies
	Failures    sim.Failures
	FailureRate float64
	// Conns is the number of NATS connections the node-updaters share.
	Conns int
	// MaxPayload overrides the server's max_payload (0: its default).
	MaxPayload int32
	// Progress, when set, receives the upgrade's own events (not every
	// container's) as they happen.
	Progress io.Writer
	Logger   *slog.Logger
	// StartPlanner, when set, runs the planner elsewhere (another process,
	// so its memory can be measured apart) against the rehearsal's NATS
	// URL instead of in this process; the returned function stops it.
	StartPlanner func(ctx context.Context, natsURL string) (stop func(context.Context) error, err error)
	// Servers runs the bus on a cluster of that many servers on loopback,
	// the stream and buckets with as many replicas (0 or 1: one server).
	Servers int
	// IdleWindow, when set, keeps the fleet running that long after the
	// upgrade and measures what the stream grew by meanwhile (heartbeats).
	IdleWindow time.Duration
}

// rehearsalReport is what a rehearsal measured, from the event history and
// the simulated nodes.
type rehearsalReport struct {
	UpgradeID  string
	Nodes      int
	Containers int
	Seed       int64
	Failure    float64
	Latency    sim.Latencies
	// Outcome is the upgrade's final event type, short (upgrade.completed...).
	Outcome string
	Reason  string
	// Duration is from the request's time to the final event's time.
	Duration time.Duration
	// StartupDuration is how long starting the simulated fleet took.
	StartupDuration time.Duration
	// Events counts the stream's events from the request to the final one.
	Events       int
	EventsPerSec float64
	WavesPlanned int
	WavesStarted int
	WavesDone    int
	Replaced     int
	Unchanged    int
	Reverted     int
	// RolledBackNodes and RollbackResult come from rollback.completed.
	RolledBackNodes int
	RollbackResult  string
	// MaxDown is, per service, the most instances down at once (draining
	// until replaced or reverted); MaxUnavailable is its limit.
	MaxDown        map[string]int
	MaxUnavailable map[string]int
	// PlannerStateBytes is the size of the upgrade's record in
	// cutover-upgrades at the end, which the planner rewrites on every
	// node result (each step has a key of its own).
	PlannerStateBytes int
	// StreamBytes and StreamMsgs are what the stream grew by from the
	// request to the final event (per replica).
	StreamBytes, StreamMsgs uint64
	// IdleBytes and IdleMsgs are what it grew by in IdleWindow after it.
	IdleBytes, IdleMsgs uint64
	IdleWindow          time.Duration
	// StoreBytes is the disk the servers' stores took at the end (every
	// replica, the cluster's logs included).
	StoreBytes int64
	// Violations lists every invariant that did not hold.
	Violations []string
}

// Text writes the report for people.
func (r rehearsalReport) Text(w io.Writer) {
	fmt.Fprintf(w, "\nrehearsal on the SIMULATED runtime: %s, %s, seed %d, failure rate %g, latency pull=%s stop=%s start=%s health=%s\n",
		render.Plural(r.Nodes, "node"), render.Plural(r.Containers, "container"), r.Seed, r.Failure, r.Latency.Pull, r.Latency.Stop, r.Latency.Start, r.Latency.Health)
	fmt.Fprintf(w, "  upgrade %s: %s", r.UpgradeID, r.Outcome)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	fmt.Fprintf(w, "\n  duration %s (fleet start-up %s, not counted); %d events, %.0f events/s\n", r.Duration.Round(time.Millisecond), r.StartupDuration.Round(time.Millisecond), r.Events, r.EventsPerSec)
	fmt.Fprintf(w, "  planner state: %d bytes in %s (the upgrade's record, rewritten on every node result; steps have keys of their own)\n", r.PlannerStateBytes, events.BucketUpgrades)
	fmt.Fprintf(w, "  waves: %d planned, %d started, %d completed\n", r.WavesPlanned, r.WavesStarted, r.WavesDone)
	fmt.Fprintf(w, "  containers: %d replaced, %d unchanged, %d reverted\n", r.Replaced, r.Unchanged, r.Reverted)
	if r.RollbackResult != "" {
		fmt.Fprintf(w, "  rollback: %s, %s rolled back\n", r.RollbackResult, render.Plural(r.RolledBackNodes, "node"))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  service\tmost down at once\tmax_unavailable")
	for _, s := range slices.Sorted(maps.Keys(r.MaxUnavailable)) {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", s, r.MaxDown[s], r.MaxUnavailable[s])
	}
	tw.Flush()
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "  invariants held: max_unavailable never exceeded, every rollback completed, every container has a running healthy copy")
		return
	}
	fmt.Fprintf(w, "  INVARIANTS VIOLATED (%d):\n", len(r.Violations))
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(w, "    ... and %d more\n", len(r.Violations)-20)
			break
		}
		fmt.Fprintln(w, "    "+v)
	}
}

// rehearse runs cfg's upgrade on a simulated fleet and reports.
func rehearse(ctx context.Context, cfg rehearsalConfig) (rehearsalReport, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	in := plan.FromInventory(cfg.Inventory)
	built, err := plan.Build(plan.FromRequest(cfg.Request), plan.Input{Nodes: in.Nodes, Services: in.Services})
	if err != nil {
		return rehearsalReport{}, err
	}
	rep := rehearsalReport{Seed: cfg.Seed, Failure: cfg.FailureRate, Latency: cfg.Latency, MaxDown: map[string]int{}, MaxUnavailable: map[string]int{}}
	for _, s := range built.Services {
		rep.MaxUnavailable[s.Name] = s.MaxUnavailable
	}
	var specs []sim.NodeSpec
	started := map[string]map[string]string{} // node -> container -> image
	for _, n := range in.Nodes {
		ns := sim.NodeSpec{Name: n.Name}
		started[n.Name] = map[string]string{}
		for _, c := range n.Containers {
			ns.Containers = append(ns.Containers, sim.ContainerSpec{Name: c.Name, Service: c.Service, Image: c.Image, WorkloadHost: c.WorkloadHost})
			started[n.Name][c.Name] = c.Image
			rep.Containers++
		}
		specs = append(specs, ns)
	}
	rep.Nodes = len(specs)

	dir, err := os.MkdirTemp("", "cutover-rehearse-")
	if err != nil {
		return rep, fmt.Errorf("create rehearsal data dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bus, err := startRehearsalNATS(dir, cfg.MaxPayload, cfg.Servers)
	if err != nil {
		return rep, err
	}
	defer bus.Close()

	// The planner, the observer and the fleet each get their own
	// connections, as separate hosts would.
	pconn, pjs, err := events.Connect(ctx, events.ClientConfig{URL: bus.URLs}, "cutover-rehearse-planner",
		events.WithSetup(events.SetupConfig{Replicas: cfg.Servers}))
	if err != nil {
		return rep, err
	}
	defer pconn.Close()
	nconns := cfg.Conns
	if nconns <= 0 {
		nconns = min(8, max(1, (len(specs)+249)/250))
	}
	var jss []jetstream.JetStream
	for i := range nconns {
		nc, err := nats.Connect(bus.URLs, nats.Name(fmt.Sprintf("cutover-rehearse-fleet-%d", i)))
		if err != nil {
			return rep, fmt.Errorf("connect simulated fleet to NATS: %w", err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return rep, fmt.Errorf("open JetStream for the simulated fleet: %w", err)
		}
		jss = append(jss, js)
	}
	oconn, ojs, err := events.Connect(ctx, events.ClientConfig{URL: bus.URLs}, "cutover-rehearse-observer")
	if err != nil {
		return rep, err
	}
	defer oconn.Close()

	if cfg.StartPlanner != nil {
		stopPlanner, err := cfg.StartPlanner(ctx, bus.URLs)
		if err != nil {
			return rep, err
		}
		defer func() { _ = stopPlanner(context.WithoutCancel(ctx)) }()
	} else {
		p, err := planner.New(ctx, planner.Config{Inventory: cfg.Inventory, Logger: cfg.Logger.With("service", "planner")}, pjs)
		if err != nil {
			return rep, err
		}
		if err := p.Start(ctx); err != nil {
			return rep, err
		}
		defer p.Close(context.WithoutCancel(ctx))
	}

	begin := time.Now()
	fleet, err := sim.StartFleet(ctx, jss, sim.FleetConfig{
		Nodes: specs, Seed: cfg.Seed, Latency: cfg.Latency, Failures: cfg.Failures,
		Logger: cfg.Logger.With("service", "node-updater"),
	})
	if err != nil {
		return rep, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_ = fleet.Close(cctx)
	}()
	rep.StartupDuration = time.Since(begin)

	req, err := events.New(events.Source("cli", ""), cfg.Request)
	if err != nil {
		return rep, err
	}
	rep.UpgradeID = req.ID()
	h := newHistory(req.ID(), cfg.Progress)
	cons, err := ojs.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}})
	if err != nil {
		return rep, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return rep, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	before := streamState(ctx, ojs)
	if err := events.NewPublisher(pjs).Publish(ctx, req); err != nil {
		return rep, err
	}
	for !h.done {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				h.fill(&rep)
				rep.PlannerStateBytes = stateSize(ctx, ojs, req.ID())
				return rep, fmt.Errorf("rehearsal of upgrade %s did not end: %w (raise --timeout, or look for a stuck wave with --debug)", req.ID(), ctx.Err())
			}
			return rep, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		e, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil {
			continue
		}
		h.add(meta.Sequence.Stream, e)
		h.lastSeen = meta.Sequence.Stream
	}
	h.fill(&rep)
	rep.PlannerStateBytes = stateSize(ctx, ojs, req.ID())
	after := streamState(ctx, ojs)
	rep.StreamBytes, rep.StreamMsgs = grewBy(before, after)
	if cfg.IdleWindow > 0 {
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("rehearsal's idle window: %w", ctx.Err())
		case <-time.After(cfg.IdleWindow):
		}
		idle := streamState(ctx, ojs)
		rep.IdleBytes, rep.IdleMsgs = grewBy(after, idle)
		rep.IdleWindow = cfg.IdleWindow
	}
	rep.StoreBytes = bus.StoreBytes()

	// The final event is out; let the node-updaters finish their last
	// inventory refresh before reading the simulated nodes.
	for _, n := range fleet.Nodes() {
		rt := fleet.Runtime(n)
		serving, images := rt.Serving(), rt.Images()
		for name, img := range started[n] {
			if !serving[name] {
				rep.Violations = append(rep.Violations, fmt.Sprintf("node %s: container %s has no running healthy copy", n, name))
			}
			if rep.Outcome == strings.TrimPrefix(events.TypeUpgradeFailed, "dev.cutover.") && rep.RollbackResult == "completed" && images[name] != img {
				rep.Violations = append(rep.Violations, fmt.Sprintf("node %s: container %s runs %s after the rollback, want %s", n, name, images[name], img))
			}
		}
		for name := range images {
			if _, ok := started[n][name]; !ok {
				rep.Violations = append(rep.Violations, fmt.Sprintf("node %s: container %s was left behind by a replacement", n, name))
			}
		}
	}
	for s, down := range rep.MaxDown {
		if limit, ok := rep.MaxUnavailable[s]; ok && down > limit {
			rep.Violations = append(rep.Violations, fmt.Sprintf("service %s: %d instances down at once, max_unavailable is %d", s, down, limit))
		}
	}
	if rep.RollbackResult != "" && rep.RollbackResult != "completed" {
		rep.Violations = append(rep.Violations, fmt.Sprintf("rollback %s: %s", rep.RollbackResult, rep.Reason))
	}
	slices.Sort(rep.Violations)
	return rep, nil
}

// stateSize returns the size of the planner's state of upgrade id, 0 when
// it cannot be read.
func stateSize(ctx context.Context, js jetstream.JetStream, id string) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, events.BucketUpgrades)
	if err != nil {
		return 0
	}
	entry, err := kv.Get(ctx, id)
	if err != nil {
		return 0
	}
	return len(entry.Value())
}

// rehearsalBus is the rehearsal's NATS: one embedded JetStream server, or
// several joined in a cluster, on loopback.
type rehearsalBus struct {
	servers []*server.Server
	// URLs is every server's client URL, comma-separated.
	URLs string
	dir  string
}

// Close shuts every server down.
func (b *rehearsalBus) Close() {
	for _, s := range b.servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// StoreBytes is the disk the servers' JetStream stores take (every replica
// and the cluster's logs), or 0 when it cannot be read.
func (b *rehearsalBus) StoreBytes() int64 {
	var n int64
	_ = filepath.WalkDir(b.dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// streamState returns the stream's state, zero when it cannot be read.
func streamState(ctx context.Context, js jetstream.JetStream) jetstream.StreamState {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return jetstream.StreamState{}
	}
	info, err := st.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}
	}
	return info.State
}

// grewBy returns the bytes and messages the stream gained from a to b (0
// when it shrank: limits discarded messages, or a state was not read).
func grewBy(a, b jetstream.StreamState) (bytes, msgs uint64) {
	if b.Bytes > a.Bytes {
		bytes = b.Bytes - a.Bytes
	}
	if b.Msgs > a.Msgs {
		msgs = b.Msgs - a.Msgs
	}
	return bytes, msgs
}

// startRehearsalNATS runs count embedded JetStream servers (a cluster when
// more than one) with their stores under dir, no port beyond loopback.
func startRehearsalNATS(dir string, maxPayload int32, count int) (_ *rehearsalBus, err error) {
	count = max(count, 1)
	b := &rehearsalBus{dir: filepath.Join(dir, "jetstream")}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	var routes []*url.URL
	var routePorts []int
	for range count {
		if count == 1 {
			break
		}
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, fmt.Errorf("find a route port for the rehearsal's NATS cluster: %w", err)
		}
		routePorts = append(routePorts, port)
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", port)})
	}
	var urls []string
	for i := range count {
		opts := &server.Options{
			ServerName: fmt.Sprintf("cutover-rehearse-%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(b.dir, strconv.Itoa(i)), NoSigs: true, NoLog: true,
			MaxPayload: maxPayload,
			// nats-server 2.15 allows 1,000 consumers per stream unless told
			// otherwise, and every node-updater has its own: lift the limit,
			// as a deployment of more than ~1,000 nodes must (see the
			// deployment docs).
			JetStreamLimits: server.JSLimitOpts{DefaultMaxConsumers: -1},
		}
		if count > 1 {
			opts.Cluster = server.ClusterOpts{Name: "cutover-rehearse", Host: "127.0.0.1", Port: routePorts[i]}
			opts.Routes = routes
		}
		s, err := server.NewServer(opts)
		if err != nil {
			return nil, fmt.Errorf("create the rehearsal's NATS server: %w", err)
		}
		go s.Start()
		b.servers = append(b.servers, s)
		if !s.ReadyForConnections(15 * time.Second) {
			return nil, errors.New("the rehearsal's NATS server did not become ready in 15s")
		}
		urls = append(urls, s.ClientURL())
	}
	b.URLs = strings.Join(urls, ",")
	if count == 1 {
		return b, nil
	}
	// A stream with replicas can be placed once the meta leader knows
	// every server as a JetStream peer.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		for _, s := range b.servers {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == count {
				return b, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the rehearsal's %d NATS servers formed no JetStream cluster in 30s", count)
		}
	}
}

// freeLoopbackPort returns a loopback TCP port that is free right now.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// history folds the event stream of one upgrade into the report's figures,
// in stream order (the order the events were published in).
type history struct {
	upgrade  string
	progress io.Writer
	done     bool

	firstSeq, lastSeq uint64
	first, last       time.Time
	final             events.Event
	rejected          string
	lastSeen          uint64
	planned           int
	wavesStarted      int
	wavesDone         int
	replaced          int
	unchanged         int
	reverted          int
	rollbackNodes     int
	rollbackResult    string
	rollbackReason    string
	service           map[string]string // node/container -> service
	down              map[string]bool   // node/container -> draining, not back yet
	downBy            map[string]int    // service -> instances down now
	maxDown           map[string]int
}

func newHistory(upgrade string, progress io.Writer) *history {
	return &history{upgrade: upgrade, progress: progress, service: map[string]string{}, down: map[string]bool{}, downBy: map[string]int{}, maxDown: map[string]int{}}
}

// add folds one event; seq is its stream sequence.
func (h *history) add(seq uint64, e events.Event) {
	if e.ID() == h.upgrade {
		h.firstSeq, h.first = seq, e.Time()
	}
	if e.Type() == events.TypeEventRejected && h.firstSeq != 0 {
		// A planner that cannot take the request rejects it after its
		// retries: that ends the rehearsal too.
		if d, err := events.DataAs[events.EventRejected](e); err == nil && d.EventID == h.upgrade {
			h.done, h.final, h.lastSeq, h.last = true, e, seq, e.Time()
			h.rejected = d.Consumer + " rejected the request: " + d.Reason
			return
		}
	}
	if h.firstSeq == 0 || events.UpgradeOf(e) != h.upgrade {
		return // before the request, or another upgrade's, or a heartbeat
	}
	key := events.NodeID(e) + "/"
	switch e.Type() {
	case events.TypeUpgradePlanned:
		if d, err := events.DataAs[events.UpgradePlanned](e); err == nil && d.Part <= 1 {
			h.planned = len(d.Waves) // a plan in parts has its waves in part 1
		}
	case events.TypeWaveStarted:
		h.wavesStarted++
	case events.TypeWaveCompleted:
		h.wavesDone++
	case events.TypeContainerDraining:
		if d, err := events.DataAs[events.ContainerDraining](e); err == nil {
			k := key + d.Container
			h.service[k] = d.Service
			if !h.down[k] {
				h.down[k] = true
				h.downBy[d.Service]++
				h.maxDown[d.Service] = max(h.maxDown[d.Service], h.downBy[d.Service])
			}
		}
	case events.TypeContainerReplaced:
		if d, err := events.DataAs[events.ContainerReplaced](e); err == nil {
			h.up(key + d.Container)
			if d.Result == events.ResultUnchanged {
				h.unchanged++
			} else {
				h.replaced++
			}
		}
	case events.TypeContainerReverted:
		if d, err := events.DataAs[events.ContainerReverted](e); err == nil {
			h.up(key + d.Container)
			h.reverted++
		}
	case events.TypeRollbackCompleted:
		if d, err := events.DataAs[events.RollbackCompleted](e); err == nil {
			h.rollbackNodes, h.rollbackResult, h.rollbackReason = len(d.Nodes), d.Result, d.Reason
		}
	}
	if h.progress != nil && e.Type() != events.TypeNodeHeartbeat && !strings.HasPrefix(e.Type(), "dev.cutover.container.") &&
		e.Type() != events.TypeNodeUpdateCompleted && e.Type() != events.TypeNodeUpdateRequested {
		fmt.Fprintln(h.progress, render.Line(e))
	}
	if final, _ := render.Final(e); final {
		h.done, h.final, h.lastSeq, h.last = true, e, seq, e.Time()
	}
}

// up marks a container back in service.
func (h *history) up(k string) {
	if h.down[k] {
		delete(h.down, k)
		h.downBy[h.service[k]]--
	}
}

// fill copies the figures into rep.
func (h *history) fill(rep *rehearsalReport) {
	if !h.done {
		// Cut short: report how far it got.
		h.last, h.lastSeq = time.Now(), h.lastSeen
		rep.Outcome = "did not finish"
	} else {
		rep.Outcome = strings.TrimPrefix(h.final.Type(), "dev.cutover.")
	}
	if h.rejected != "" {
		rep.Reason = h.rejected
		v := "the upgrade never ran: " + h.rejected
		if strings.Contains(h.rejected, "maximum payload") || strings.Contains(h.rejected, "message too large") {
			v += " (an event or KV value outgrew the NATS message size limit; --max-payload raises it, up to NATS's 64 MB maximum)"
		}
		rep.Violations = append(rep.Violations, v)
	}
	switch h.final.Type() {
	case events.TypeUpgradeFailed:
		if d, err := events.DataAs[events.UpgradeFailed](h.final); err == nil {
			rep.Reason = d.Reason
		}
	case events.TypeUpgradePaused:
		if d, err := events.DataAs[events.UpgradePaused](h.final); err == nil {
			rep.Reason = d.Reason
		}
	}
	rep.Duration = h.last.Sub(h.first)
	if h.lastSeq >= h.firstSeq {
		rep.Events = int(h.lastSeq - h.firstSeq + 1)
	}
	if rep.Duration > 0 {
		rep.EventsPerSec = float64(rep.Events) / rep.Duration.Seconds()
	}
	rep.WavesPlanned, rep.WavesStarted, rep.WavesDone = h.planned, h.wavesStarted, h.wavesDone
	rep.Replaced, rep.Unchanged, rep.Reverted = h.replaced, h.unchanged, h.reverted
	rep.RolledBackNodes, rep.RollbackResult = h.rollbackNodes, h.rollbackResult
	if h.rollbackResult != "" && h.rollbackResult != "completed" && rep.Reason == "" {
		rep.Reason = h.rollbackReason
	}
	maps.Copy(rep.MaxDown, h.maxDown)
	for k := range h.down {
		rep.Violations = append(rep.Violations, fmt.Sprintf("container %s went down (draining) and never came back (no replaced or reverted event)", k))
	}
}
