package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/loadgen"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/inventory"
	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
	"github.com/cutover-dev/cutover/services/lb-agent/haproxy"
)

// The zero-downtime scenario: three replicas of the test kit's demo app,
// each on its own node with a static IP on a user network, behind a real
// HAProxy, rolled from v1 to v2 by the in-process stack while a constant
// load runs through HAProxy. With drain, cutover's lb-agent takes each
// replica out of HAProxy before the node-updater stops it (the updater
// waits for the acknowledgement); without drain, the replacement is the
// plain stop-first one Watchtower and kolla-ansible do, and HAProxy only
// notices through its health check. The demo, the test and the benchmark
// all run it through runZeroDowntime.

const (
	zdReplicas = 3
	zdService  = "web"
	zdPort     = 8080
	// zdDrainAckTimeout is how long a node-updater waits for the lb-agent's
	// acknowledgement; the agent answers in milliseconds when no request is
	// open, so this only bounds a lost agent.
	zdDrainAckTimeout = 10 * time.Second
	// zdWarmUp is how long the load runs before the upgrade is requested,
	// so the upgrade is measured against a steady load.
	zdWarmUp = 2 * time.Second
)

// runConfig is what a run of either HAProxy scenario is given.
type runConfig struct {
	// Run prefixes every name the run creates and is the value of the
	// dev.cutover.test label on its containers, so cleanup finds them.
	Run string
	// V1 and V2 are the images rolled from and to, already in a registry.
	V1, V2 testkit.Image
	// Rate is the load per second.
	Rate int
	// MinLoad is the least time the load runs; it also runs until the
	// upgrade has ended, whichever is later.
	MinLoad time.Duration
	// WorkDir holds HAProxy's configuration and the stack's data.
	WorkDir string
	// Events receives one line per upgrade event; Progress a load line
	// once a second; nil discards them.
	Events, Progress io.Writer
	// Logger receives the services' logs.
	Logger *slog.Logger
	// Version is the version the node-updaters report (default "dev").
	Version string
}

// setDefaults discards the events and logs nobody asked for.
func (c *runConfig) setDefaults() {
	if c.Events == nil {
		c.Events = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// label is the dev.cutover.test label of a run's containers.
func (c runConfig) label() string { return testkit.LabelTest + "=" + c.Run }

// zdConfig describes one run of the zero-downtime scenario.
type zdConfig struct {
	runConfig
	// Drain runs the lb-agent and sets drain_ack_timeout on the release;
	// false is the no-drain, stop-first baseline.
	Drain bool
	// NoRetry turns off HAProxy's retries and redispatch, so a request sent
	// to a replica that is gone fails instead of being retried elsewhere.
	NoRetry bool
	// DrainDelay makes the load balancer take this much longer to drain
	// each replica, as it does when a long request is still open; a test
	// uses it to show that the node-updater waits for the drain.
	DrainDelay time.Duration
}

// zdResult is what one run measured.
type zdResult struct {
	Drain     bool
	NoRetry   bool
	Load      loadgen.Result
	UpgradeID string
	// UpgradeErr is set when the upgrade did not complete.
	UpgradeErr error
	// Timeline has, per container, when it was announced draining, when the
	// load balancer acknowledged, when Docker was told to stop the old
	// container, and when the replacement was reported.
	Timeline map[string]*zdTimeline
	// Images maps each container to the image version it runs afterwards.
	Images map[string]string
}

// zdTimeline is one container's replacement as seen from the event stream
// (event times) and from the Docker engine (its kill event).
type zdTimeline struct {
	Draining, Drained, Stopped, Replaced time.Time
}

// runZeroDowntime runs the scenario once and removes everything it created
// except the images. The error is about the scenario itself (Docker,
// HAProxy, NATS); how the upgrade and the load went is in the result.
func runZeroDowntime(ctx context.Context, cli *client.Client, cfg zdConfig) (res zdResult, err error) {
	cfg.setDefaults()
	res = zdResult{Drain: cfg.Drain, NoRetry: cfg.NoRetry, Timeline: map[string]*zdTimeline{}, Images: map[string]string{}}
	network := cfg.Run + "-net"
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, zdCleanup(cctx, cli, cfg.label(), network))
	}()

	b, err := startBed(ctx, cli, bedConfig{
		Run: cfg.Run, Image: cfg.V1.Ref, Network: network, WorkDir: cfg.WorkDir, HAProxyDir: cfg.WorkDir, NoRetry: cfg.NoRetry,
		Replica: func(o *testkit.ContainerOpts) { o.Env = []string{"DEMO_GREETING=hello from " + o.Node} },
		Agent:   cfg.Drain, DrainDelay: cfg.DrainDelay, Logger: cfg.Logger, Version: cfg.Version,
	})
	if err != nil {
		return res, err
	}
	defer b.close(ctx)
	s, names, front := b.stack, b.reps.names, b.front

	// The load runs on its own context: it is stopped only once the upgrade
	// has ended and MinLoad has passed, or when ctx ends.
	load := zdStartLoad(ctx, loadgen.Config{URL: "http://" + front + "/", Rate: cfg.Rate}, cfg.Progress)
	defer load.stop()
	if err := load.warmUp(ctx); err != nil {
		return res, err
	}
	// The engine keeps only its latest events, which other users of a
	// shared engine push out: watch the kills live from before the upgrade.
	kw := zdWatchKills(ctx, cli, cfg.label())
	defer kw.stop()
	target := events.ServiceRelease{Image: cfg.V2.Ref, MinHealthyMs: 1000}
	if cfg.Drain {
		target.DrainAckTimeoutMs = zdDrainAckTimeout.Milliseconds()
	}
	req, err := events.New(events.Source("cli", ""), events.UpgradeRequested{
		RequestedBy: "cutover demo-zero-downtime",
		Release:     events.Release{Name: zdService + "-v2", Services: map[string]events.ServiceRelease{zdService: target}},
	})
	if err != nil {
		return res, err
	}
	res.UpgradeID = req.ID()
	// upgrade calls back on this goroutine: the timeline needs no lock.
	tl := func(container string) *zdTimeline {
		if res.Timeline[container] == nil {
			res.Timeline[container] = &zdTimeline{}
		}
		return res.Timeline[container]
	}
	res.UpgradeErr, res.Load, err = cfg.upgrade(ctx, s.JetStream(), req, load, func(e events.Event) {
		switch e.Type() {
		case events.TypeContainerDraining:
			if d, err := events.DataAs[events.ContainerDraining](e); err == nil {
				tl(d.Container).Draining = e.Time()
			}
		case events.TypeContainerDrained:
			if d, err := events.DataAs[events.ContainerDrained](e); err == nil {
				tl(d.Container).Drained = e.Time()
			}
		case events.TypeContainerReplaced:
			if d, err := events.DataAs[events.ContainerReplaced](e); err == nil {
				tl(d.Container).Replaced = e.Time()
			}
		}
	})
	if err != nil {
		return res, err
	}

	// When Docker was told to stop each old container: its kill event. The
	// old container carries the -cutover-old name by then.
	kills, err := kw.stop()
	if err != nil {
		return res, err
	}
	for name, at := range kills {
		tl(strings.TrimSuffix(name, "-cutover-old")).Stopped = at
	}
	res.Images, err = zdVersions(ctx, cli, names, cfg.V1, cfg.V2)
	return res, err
}

// zdReplicaSet is the v1 replicas of a scenario and their HAProxy servers.
type zdReplicaSet struct {
	names, nodes []string                  // container and node names
	servers      map[string]string         // HAProxy server -> address
	mapping      map[string]lbagent.Server // container -> HAProxy server
}

// zdStartReplicas creates zdReplicas healthy v1 containers of the web
// service, one per node, each on a static address of subnet (so HAProxy's
// server addresses survive a replacement). opts adds to each container's
// options.
func zdStartReplicas(ctx context.Context, cli *client.Client, run, image, network string, subnet netip.Prefix, opts func(*testkit.ContainerOpts)) (zdReplicaSet, error) {
	rs := zdReplicaSet{servers: map[string]string{}, mapping: map[string]lbagent.Server{}}
	var ids []string
	for i := 1; i <= zdReplicas; i++ {
		name, node, srv := fmt.Sprintf("%s-web-%d", run, i), fmt.Sprintf("%s-node%d", run, i), fmt.Sprintf("s%d", i)
		ip := zdAddr(subnet, 10+i)
		o := testkit.ContainerOpts{
			Name: name, Image: image, Node: node, Service: zdService,
			Labels:  map[string]string{testkit.LabelTest: run},
			Network: network, IPv4: ip.String(),
		}
		opts(&o)
		id, err := testkit.CreateContainer(ctx, cli, o)
		if err != nil {
			return rs, err
		}
		rs.servers[srv] = net.JoinHostPort(ip.String(), fmt.Sprint(zdPort))
		rs.mapping[name] = lbagent.Server{Backend: zdService, Server: srv}
		rs.names, rs.nodes, ids = append(rs.names, name), append(rs.nodes, node), append(ids, id)
	}
	for i, id := range ids {
		if _, err := testkit.WaitHealth(ctx, cli, id, "healthy"); err != nil {
			return rs, fmt.Errorf("wait for v1 container %s to be healthy: %w", rs.names[i], err)
		}
	}
	return rs, nil
}

// zdStartHAProxy runs HAProxy in dir in front of servers, with an HTTP
// health check, and waits until every server is up. It returns the
// frontend's address.
func zdStartHAProxy(ctx context.Context, dir string, servers map[string]string, noRetry bool) (*haproxy.Process, string, error) {
	front, err := zdFreeAddr()
	if err != nil {
		return nil, "", err
	}
	hp, err := haproxy.Run(ctx, dir, haproxy.Backend{Name: zdService, Listen: front, Servers: servers, HealthPath: "/healthz", NoRetry: noRetry})
	if err != nil {
		return nil, "", err
	}
	if err := zdWaitUp(ctx, hp, len(servers)); err != nil {
		_ = hp.Close()
		return nil, "", fmt.Errorf("%w\nhaproxy log:\n%s", err, hp.Log())
	}
	return hp, front, nil
}

// zdLoad is a load running across an upgrade, on its own context: it is
// stopped only once the upgrade has ended and the minimum time has passed,
// or when the scenario's context ends.
type zdLoad struct {
	cancel context.CancelFunc
	start  time.Time
	done   chan loadgen.Result // buffered: the load never waits for a reader
	bg     sync.WaitGroup
}

// zdStartLoad starts the load, and a once-a-second progress line when
// progress is set.
func zdStartLoad(ctx context.Context, cfg loadgen.Config, progress io.Writer) *zdLoad {
	l := &zdLoad{start: time.Now(), done: make(chan loadgen.Result, 1)}
	var live loadgen.Live
	cfg.Live = &live
	loadCtx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	l.bg.Go(func() {
		r, _ := loadgen.Run(loadCtx, cfg)
		l.done <- r
	})
	if progress != nil {
		l.bg.Go(func() { zdProgress(loadCtx, progress, &live, l.start) })
	}
	return l
}

// upgrade publishes the upgrade request req and follows it to its end,
// calling on (on this goroutine) with each of its events, then lets the
// load run out (finish). failed is the upgrade's own failure, for the
// result; err is the run's.
func (c runConfig) upgrade(ctx context.Context, js jetstream.JetStream, req events.Event, load *zdLoad, on func(events.Event)) (failed error, lr loadgen.Result, err error) {
	if err := events.NewPublisher(js).Publish(ctx, req); err != nil {
		return nil, lr, err
	}
	failed = upgrades.Follow(ctx, js, req.ID(), c.Events, on)
	if ctx.Err() != nil {
		return failed, lr, ctx.Err()
	}
	if failed != nil {
		failed = fmt.Errorf("upgrade %s did not complete: %w", req.ID(), failed)
	}
	lr, err = load.finish(ctx, c.MinLoad, c.Events)
	return failed, lr, err
}

// warmUp lets the load run alone for zdWarmUp before the upgrade starts.
func (l *zdLoad) warmUp(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(zdWarmUp):
		return nil
	}
}

// finish keeps the load going until minLoad has passed since its start, then
// stops it and returns its result.
func (l *zdLoad) finish(ctx context.Context, minLoad time.Duration, w io.Writer) (loadgen.Result, error) {
	if rest := minLoad - time.Since(l.start); rest > 0 {
		fmt.Fprintf(w, "upgrade over; load goes on for %s more (at least %s in all)\n", rest.Round(time.Second), minLoad)
		select {
		case <-ctx.Done():
			return loadgen.Result{}, ctx.Err()
		case <-time.After(rest):
		}
	}
	l.cancel()
	return <-l.done, nil
}

// stop ends the load and its progress line and waits for them.
func (l *zdLoad) stop() {
	l.cancel()
	l.bg.Wait()
}

// zdVersions says which version each container runs now, read from the engine.
func zdVersions(ctx context.Context, cli *client.Client, names []string, v1, v2 testkit.Image) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range names {
		insp, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			return out, fmt.Errorf("inspect %s after the upgrade: %w", name, err)
		}
		v := map[string]string{v1.ID: "v1", v2.ID: "v2"}[insp.Container.Image]
		if v == "" {
			v = short(insp.Container.Image)
		}
		if !insp.Container.State.Running {
			v += " (not running)"
		}
		out[name] = v
	}
	return out, nil
}

// zdNetwork creates a user network with a free /24 for static addresses.
// The subnet is picked at random in 10.128.0.0/9 and another is tried when
// it overlaps a network that exists.
func zdNetwork(ctx context.Context, cli *client.Client, name string) (netip.Prefix, error) {
	var errs []error
	for range 8 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(128 + rand.IntN(127)), byte(rand.IntN(256)), 0}), 24)
		err := testkit.EnsureNetwork(ctx, cli, name, p.String())
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if !strings.Contains(err.Error(), "overlap") {
			break
		}
	}
	return netip.Prefix{}, fmt.Errorf("create network %s with a free subnet: %w", name, errors.Join(errs...))
}

// zdAddr returns host number n of a /24.
func zdAddr(p netip.Prefix, n int) netip.Addr {
	b := p.Addr().As4()
	b[3] = byte(n)
	return netip.AddrFrom4(b)
}

func zdFreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port for HAProxy: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// zdWaitUp waits until HAProxy's health checks see every server UP.
func zdWaitUp(ctx context.Context, hp *haproxy.Process, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		st, err := hp.Stats(ctx, zdService)
		up := 0
		for _, s := range st {
			if s.Status == "UP" {
				up++
			}
		}
		if err == nil && up == n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for HAProxy to see %d servers UP (stats %+v, err %v): %w", n, st, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// zdProgress prints the load's running totals once per second until ctx ends.
func zdProgress(ctx context.Context, w io.Writer, live *loadgen.Live, start time.Time) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c := live.Load()
			fmt.Fprintf(w, "  load %4.0fs: sent %6d  ok %6d  failed %4d\n", time.Since(start).Seconds(), c.Sent, c.OK, c.Failed)
		}
	}
}

// killWatch records, for each container carrying a label, when the engine
// first sent it a signal: the kill event that starts a stop.
type killWatch struct {
	cancel context.CancelFunc
	done   chan struct{}
	kills  map[string]time.Time
	err    error
}

// zdWatchKills starts following the engine's kill events for containers
// carrying label; stop ends it and returns what it saw.
func zdWatchKills(ctx context.Context, cli *client.Client, label string) *killWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &killWatch{cancel: cancel, done: make(chan struct{}), kills: map[string]time.Time{}}
	r := cli.Events(ctx, client.EventsListOptions{
		Filters: client.Filters{}.Add("type", "container").Add("event", "kill").Add("label", label),
	})
	go func() {
		defer close(w.done)
		for {
			select {
			case m := <-r.Messages:
				name, at := m.Actor.Attributes["name"], time.Unix(0, m.TimeNano)
				if prev, ok := w.kills[name]; !ok || at.Before(prev) {
					w.kills[name] = at
				}
			case err := <-r.Err:
				if ctx.Err() == nil {
					w.err = fmt.Errorf("follow the engine's kill events for %s: %w", label, err)
				}
				return
			}
		}
	}()
	return w
}

// stop ends the watch and returns the kills seen, by container name. It
// may be called more than once.
func (w *killWatch) stop() (map[string]time.Time, error) {
	w.cancel()
	<-w.done
	return w.kills, w.err
}

// slowDrain is a load balancer that takes delay longer to drain a server.
type slowDrain struct {
	*haproxy.Client
	delay time.Duration
}

// Drain waits delay, then drains the server.
func (s slowDrain) Drain(ctx context.Context, backend, server string, timeout time.Duration) error {
	if s.delay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.delay):
		}
	}
	return s.Client.Drain(ctx, backend, server, timeout)
}

// zdCleanup removes a run's containers, then its network.
func zdCleanup(ctx context.Context, cli *client.Client, label, network string) error {
	err := testkit.Cleanup(ctx, cli, label)
	if _, nerr := cli.NetworkRemove(ctx, network, client.NetworkRemoveOptions{}); nerr != nil && !strings.Contains(nerr.Error(), "not found") {
		err = errors.Join(err, fmt.Errorf("remove network %s: %w", network, nerr))
	}
	return err
}

// mode names a run's variant.
func (r zdResult) mode() string {
	mode := "cutover (drain via lb-agent)"
	if !r.Drain {
		mode = "no drain (stop-first)"
	}
	if r.NoRetry {
		mode += ", HAProxy retries off"
	}
	return mode
}

// summary is one line for a run: the load's result and the upgrade's.
func (r zdResult) summary() string {
	mode := r.mode()
	up := "upgrade completed"
	if r.UpgradeErr != nil {
		up = r.UpgradeErr.Error()
	}
	return fmt.Sprintf("%-50s %s; %s", mode+":", r.Load, up)
}

// bedConfig is what differs between the set-ups of the HAProxy scenarios.
type bedConfig struct {
	Run, Image, Network string
	// WorkDir holds the stack's data, HAProxyDir HAProxy's configuration.
	WorkDir, HAProxyDir string
	// Replica adds to each replica's container options.
	Replica func(*testkit.ContainerOpts)
	// NoRetry turns off HAProxy's retries and redispatch.
	NoRetry bool
	// Inventory, when set, gives the planner an inventory of the nodes.
	Inventory func(nodes []string) *inventory.Inventory
	// Agent runs the lb-agent, which takes DrainDelay longer to drain.
	Agent      bool
	DrainDelay time.Duration
	Logger     *slog.Logger
	Version    string
}

// bed is what both HAProxy scenarios roll: zdReplicas healthy replicas of
// the image on a user network, a real HAProxy in front of them, the
// in-process stack with a node-updater per replica's node, and (with
// Agent) the lb-agent draining HAProxy's servers.
type bed struct {
	reps    zdReplicaSet
	front   string // HAProxy's frontend address
	stack   *stack.Stack
	closers []func()
}

// startBed sets the bed up; on an error it removes what it started. The
// caller removes the containers and the network (zdCleanup).
func startBed(ctx context.Context, cli *client.Client, cfg bedConfig) (b *bed, err error) {
	b = &bed{}
	defer func() {
		if err != nil {
			b.close(ctx)
		}
	}()
	subnet, err := zdNetwork(ctx, cli, cfg.Network)
	if err != nil {
		return nil, err
	}
	if err := testkit.PullImage(ctx, cli, cfg.Image); err != nil {
		return nil, err
	}
	if b.reps, err = zdStartReplicas(ctx, cli, cfg.Run, cfg.Image, cfg.Network, subnet, cfg.Replica); err != nil {
		return nil, err
	}
	hp, front, err := zdStartHAProxy(ctx, cfg.HAProxyDir, b.reps.servers, cfg.NoRetry)
	if err != nil {
		return nil, err
	}
	b.front = front
	b.closers = append(b.closers, func() { _ = hp.Close() })
	scfg := stack.Config{
		DataDir: filepath.Join(cfg.WorkDir, "data"), NATSListen: "127.0.0.1:0", Docker: cli, Nodes: b.reps.nodes,
		AgentVersion: cfg.Version, Logger: cfg.Logger,
	}
	if cfg.Inventory != nil {
		scfg.Inventory = cfg.Inventory(b.reps.nodes)
	}
	if b.stack, err = stack.Start(ctx, scfg); err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { _ = b.stack.Close(context.WithoutCancel(ctx)) })
	if err := b.stack.WaitNodes(ctx, b.reps.nodes); err != nil {
		return nil, err
	}
	if cfg.Agent {
		agent, err := lbagent.New(lbagent.Config{Servers: b.reps.mapping, DrainTimeout: zdDrainAckTimeout, Logger: cfg.Logger.With("service", "lb-agent")},
			b.stack.JetStream(), slowDrain{hp.Client, cfg.DrainDelay})
		if err != nil {
			return nil, err
		}
		if err := agent.Start(ctx); err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { _ = agent.Close(context.WithoutCancel(ctx)) })
	}
	return b, nil
}

// close stops what startBed started, last first.
func (b *bed) close(ctx context.Context) {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}
