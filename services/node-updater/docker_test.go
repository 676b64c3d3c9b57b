package nodeupdater_test

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/harness/testkit"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// env is one test run's playground: a Docker engine, an in-process registry
// with the demo images, a NATS server, and user networks. Everything it
// creates carries the run's LabelTest label or is tracked by name/ID, and is
// removed at the end: containers, then volumes and networks, then images.
type env struct {
	cli    *client.Client
	reg    *testkit.Registry
	nats   *natstest.Server
	runID  string
	prefix string

	v1, v2, v2Plain, never testkit.Image
	net1, net2             string
	subnet1                netip.Prefix

	// push pushes one more image of the run's repository; call it from the
	// test that created the env, not from a subtest.
	push func(testkit.ImageSpec) testkit.Image
}

func newEnv(t testing.TB) *env {
	t.Helper()
	cli := testkit.DockerOrSkip(t)

	b := make([]byte, 4)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	e := &env{cli: cli, runID: hex.EncodeToString(b)}
	e.prefix = "cutover-nu-" + e.runID

	e.reg = testkit.StartTestRegistry(t)

	var images []string // IDs, removed after every container
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range images {
			_, err := cli.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove image %s: %v", id, err)
			}
		}
	})
	var networks []string
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range networks {
			if _, err := cli.NetworkRemove(ctx, n, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove network %s: %v", n, err)
			}
		}
	})
	t.Cleanup(func() {
		// t.Context is cancelled by now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := testkit.Cleanup(ctx, cli, testkit.LabelTest+"="+e.runID); err != nil {
			t.Errorf("clean up run %s: %v", e.runID, err)
		}
	})

	bin, err := testkit.BuildDemoApp(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("build demoapp: %v", err)
	}
	repo := "nu-" + e.runID + "/web"
	push := func(spec testkit.ImageSpec) testkit.Image {
		spec.Repo = repo
		// Images are reproducible: equal specs give equal image IDs, and
		// other packages' tests push the same specs in parallel. A per-run
		// variable makes this run's IDs its own, so removing them at the end
		// cannot pull an image from under someone else's container.
		spec.Env = append(spec.Env, "CUTOVER_TEST_RUN="+e.runID)
		img, err := e.reg.Push(t.Context(), bin, spec)
		if err != nil {
			t.Fatalf("push %s: %v", spec.Tag, err)
		}
		images = append(images, img.ID)
		return img
	}
	e.push = push
	e.v1 = push(testkit.ImageSpec{Tag: "v1", Version: "v1", Healthcheck: true, Labels: map[string]string{"org.opencontainers.image.version": "v1"}})
	e.v2 = push(testkit.ImageSpec{Tag: "v2", Version: "v2", Healthcheck: true, Labels: map[string]string{"org.opencontainers.image.version": "v2"}})
	e.v2Plain = push(testkit.ImageSpec{Tag: "v2-plain", Version: "v2"})
	e.never = push(testkit.ImageSpec{Tag: "never", Version: "v3", Mode: "never-healthy", Healthcheck: true})
	// Only v1 is on the engine before the updater runs; it pulls the rest.
	if err := testkit.PullImage(t.Context(), cli, e.v1.Ref); err != nil {
		t.Fatalf("pull v1: %v", err)
	}

	for i, name := range []string{e.prefix + "-front", e.prefix + "-back"} {
		subnet := createNetwork(t, cli, name)
		networks = append(networks, name)
		if i == 0 {
			e.net1, e.subnet1 = name, subnet
		} else {
			e.net2 = name
		}
	}

	e.nats = natstest.Start(t)
	return e
}

// createNetwork creates a user bridge network on a random 10.x.y.0/24,
// trying again when the subnet is taken.
func createNetwork(t testing.TB, cli *client.Client, name string) netip.Prefix {
	t.Helper()
	var errs []error
	for range 5 {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + rand.IntN(150)), byte(rand.IntN(256)), 0}), 24)
		if err := testkit.EnsureNetwork(t.Context(), cli, name, subnet.String()); err != nil {
			errs = append(errs, err)
			continue
		}
		return subnet
	}
	t.Fatalf("create network %s: %v", name, errors.Join(errs...))
	return netip.Prefix{}
}

// ip returns host address n of the front network.
func (e *env) ip(n byte) netip.Addr {
	a := e.subnet1.Addr().As4()
	a[3] = n
	return netip.AddrFrom4(a)
}

// container creates and starts a container owned by node and waits until
// it is healthy.
func (e *env) container(t testing.TB, opts testkit.ContainerOpts) container.InspectResponse {
	t.Helper()
	labels := map[string]string{testkit.LabelTest: e.runID}
	maps.Copy(labels, opts.Labels)
	opts.Labels = labels
	if opts.Image == "" {
		opts.Image = e.v1.Ref
	}
	id, err := testkit.CreateContainer(t.Context(), e.cli, opts)
	if err != nil {
		t.Fatalf("create container %s: %v", opts.Name, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := testkit.WaitHealth(ctx, e.cli, id, container.Healthy)
	if err != nil {
		t.Fatalf("container %s: %v", opts.Name, err)
	}
	return c
}

func (e *env) inspect(t testing.TB, nameOrID string) container.InspectResponse {
	t.Helper()
	res, err := e.cli.ContainerInspect(t.Context(), nameOrID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", nameOrID, err)
	}
	return res.Container
}

func (e *env) gone(t testing.TB, nameOrID string) bool {
	t.Helper()
	_, err := e.cli.ContainerInspect(t.Context(), nameOrID, client.ContainerInspectOptions{})
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect %s: %v", nameOrID, err)
	}
	return cerrdefs.IsNotFound(err)
}

// updater starts an updater for node and closes it at the end of the test.
func (e *env) updater(t testing.TB, node string) *nodeupdater.Updater {
	t.Helper()
	u, err := nodeupdater.New(nodeupdater.Config{
		Node:         node,
		AgentVersion: "test",
		Logger:       slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	}, e.nats.JS, docker.New(e.cli))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, u, 30*time.Second)
	return u
}

// command publishes a node command as the planner would.
func (e *env) command(t testing.TB, node string, cmd events.NodeUpdateRequested) events.Event {
	t.Helper()
	ev := events.MustNew(events.Source("planner", ""), cmd, events.WithNode(node), events.WithUpgrade("up-"+e.runID))
	if err := events.NewPublisher(e.nats.JS).Publish(t.Context(), ev); err != nil {
		t.Fatalf("publish command: %v", err)
	}
	return ev
}

// watch records every event on subjects from now on.
type watch struct {
	mu  sync.Mutex
	evs []events.Event
}

func (e *env) watch(t testing.TB, subjects ...string) *watch {
	t.Helper()
	cons, err := e.nats.JS.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatalf("watch %v: %v", subjects, err)
	}
	w := &watch{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(m.Headers(), m.Data())
		if err != nil {
			t.Errorf("undecodable event on %s: %v", m.Subject(), err)
			return
		}
		w.mu.Lock()
		w.evs = append(w.evs, ev)
		w.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("consume %v: %v", subjects, err)
	}
	t.Cleanup(cc.Stop)
	return w
}

// find returns the first recorded event of typ caused by cause.
// all returns every event seen so far.
func (w *watch) all() []events.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.evs)
}

func (w *watch) find(typ string, cause events.Event) (events.Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ev := range w.evs {
		if ev.Type() == typ && events.CausationID(ev) == cause.ID() {
			return ev, true
		}
	}
	return events.Event{}, false
}

// await polls until an event of typ caused by cause arrives.
func (w *watch) await(t testing.TB, typ string, cause events.Event, timeout time.Duration) events.Event {
	t.Helper()
	var got events.Event
	poll(t, timeout, "event "+typ, func() bool {
		var ok bool
		got, ok = w.find(typ, cause)
		return ok
	})
	return got
}

// types lists the types of the events caused by cause, in arrival order.
func (w *watch) types(cause events.Event) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, ev := range w.evs {
		if events.CausationID(ev) == cause.ID() {
			out = append(out, ev.Type())
		}
	}
	return out
}

// poll calls cond every 50ms until it holds or timeout passes.
func poll(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		case <-tick.C:
		}
	}
}

func dataAs[T any](t testing.TB, ev events.Event) T {
	t.Helper()
	v, err := events.DataAs[T](ev)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func httpDo(t *testing.T, method, url, body string) string {
	t.Helper()
	out, err := testkit.HTTP(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func version(t *testing.T, ip netip.Addr) string {
	t.Helper()
	var r struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(httpDo(t, http.MethodGet, "http://"+ip.String()+":8080/", "")), &r); err != nil {
		t.Fatal(err)
	}
	return r.Version
}

// userAliases drops Docker's automatic short-ID alias.
func userAliases(c container.InspectResponse, netName string) []string {
	ep := c.NetworkSettings.Networks[netName]
	if ep == nil {
		return nil
	}
	return slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(ep.Aliases), func(a string) bool { return a == c.ID[:12] })))
}

// TestDocker drives the updater against the real engine. The subtests share
// the run's images, networks and NATS server but each works on its own
// containers, and they run one after the other: the machine is small.
func TestDocker(t *testing.T) {
	start := time.Now()
	e := newEnv(t)
	t.Logf("set up images, networks and NATS in %s", time.Since(start).Round(time.Millisecond))

	node := "n-" + e.runID
	status := e.watch(t, events.NodeStatusSubject(node))
	heartbeats := e.watch(t, events.NodeHeartbeatSubject(node))
	rejected := e.watch(t, events.SubjectRejected)
	e.updater(t, node)
	poll(t, 10*time.Second, "a heartbeat", func() bool {
		heartbeats.mu.Lock()
		defer heartbeats.mu.Unlock()
		return slices.ContainsFunc(heartbeats.evs, func(ev events.Event) bool { return ev.Type() == events.TypeNodeHeartbeat })
	})
	if inv := inventory(t, e, node); inv.Runtime != "docker" || inv.AgentVersion != "test" || len(inv.Containers) != 0 {
		t.Errorf("inventory at start %+v", inv)
	}

	t.Run("replace v1 with v2 keeping config and data", func(t *testing.T) { testReplace(t, e, node, status) })
	t.Run("failing health check reverts to v1", func(t *testing.T) { testRevert(t, e, node, status) })
	t.Run("missing image fails the pull and touches nothing", func(t *testing.T) { testPullMissing(t, e, node, status) })
	t.Run("workload host on an undrained node is refused", func(t *testing.T) { testWorkloadHost(t, e, node, status, rejected) })
	t.Run("close mid-replacement reverts", func(t *testing.T) { testCloseMidReplacement(t, e) })
	t.Run("start recovers an interrupted replacement", func(t *testing.T) { testRecovery(t, e) })
	t.Logf("whole test took %s", time.Since(start).Round(time.Millisecond))
}

func testReplace(t *testing.T, e *env, node string, status *watch) {
	name := e.prefix + "-web"
	vol := e.prefix + "-web-data"
	ip := e.ip(10)
	_, hostPort, _ := net.SplitHostPort(natstest.FreeAddr(t))
	old := e.container(t, testkit.ContainerOpts{
		Name: name, Node: node, Service: "web",
		Labels:        map[string]string{"team": "shop"},
		Env:           []string{"EXTRA=1"},
		Volumes:       map[string]string{vol: "/data"},
		Binds:         []string{t.TempDir() + ":/config:ro"},
		Network:       e.net1,
		Aliases:       []string{"web", "shop-web"},
		IPv4:          ip.String(),
		Ports:         map[string]string{"8080/tcp": hostPort},
		RestartPolicy: "unless-stopped",
	})
	// A second network with its own alias: API 1.41 creates with one
	// network, the updater connects the other before the start.
	if _, err := e.cli.NetworkConnect(t.Context(), e.net2, client.NetworkConnectOptions{
		Container: old.ID, EndpointConfig: &network.EndpointSettings{Aliases: []string{"web-internal"}},
	}); err != nil {
		t.Fatalf("connect second network: %v", err)
	}
	old = e.inspect(t, old.ID)

	data := "http://" + ip.String() + ":8080/data"
	httpDo(t, http.MethodPost, data, "order 42")

	cmd := e.command(t, node, events.NodeUpdateRequested{Wave: 0, Containers: []events.ContainerTarget{{Container: name, Service: "web", Image: e.v2.Ref}}})
	done := status.await(t, events.TypeNodeUpdateCompleted, cmd, 90*time.Second)
	completed := dataAs[events.NodeUpdateCompleted](t, done)
	if len(completed.Results) != 1 || completed.Results[0].Result != events.ResultReplaced || completed.Results[0].ToImage != e.v2.Ref {
		t.Fatalf("completed results %+v", completed.Results)
	}
	// v2 is pulled for the first time here: its progress comes before the
	// pulled event (its one layer finished), then the replacement's steps.
	wantTypes := []string{events.TypeContainerPulling, events.TypeContainerPulled, events.TypeContainerDraining, events.TypeContainerReplaced, events.TypeNodeUpdateCompleted}
	if got := status.types(cmd); !slices.Equal(got, wantTypes) {
		t.Errorf("status events %v, want %v", got, wantTypes)
	}
	progress := dataAs[events.ContainerPulling](t, status.await(t, events.TypeContainerPulling, cmd, time.Second))
	if progress.Container != name || progress.Image != e.v2.Ref || progress.LayersDone != 1 || progress.LayersTotal != 1 {
		t.Errorf("pull progress %+v, want web's one layer of v2 done", progress)
	}
	replaced := dataAs[events.ContainerReplaced](t, status.await(t, events.TypeContainerReplaced, cmd, time.Second))
	if replaced.Result != events.ResultReplaced || replaced.FromImage != e.v1.Ref || replaced.FromImageID != e.v1.ID ||
		replaced.ToImageID != e.v2.ID || replaced.InterruptionMs <= 0 {
		t.Errorf("replaced event %+v", replaced)
	}
	if upgrade := events.UpgradeID(done); upgrade != "up-"+e.runID {
		t.Errorf("completion carries upgrade id %q", upgrade)
	}

	now := e.inspect(t, name)
	if now.ID == old.ID || now.Image != e.v2.ID || !now.State.Running {
		t.Fatalf("after update: id %s (old %s) image %s running %v", now.ID[:12], old.ID[:12], now.Image, now.State.Running)
	}
	if v := version(t, ip); v != "v2" {
		t.Errorf("GET / reports version %q, want v2", v)
	}
	if got := httpDo(t, http.MethodGet, data, ""); !strings.Contains(got, "order 42") || !strings.Contains(got, "started v2") {
		t.Errorf("GET /data after update = %q, want the record posted before", got)
	}

	// User-set configuration carried over; image defaults follow the image.
	if !slices.Contains(now.Config.Env, "EXTRA=1") || !slices.Contains(now.Config.Env, "DEMO_VERSION=v2") || slices.Contains(now.Config.Env, "DEMO_VERSION=v1") {
		t.Errorf("env %v", now.Config.Env)
	}
	wantLabels := maps.Clone(old.Config.Labels)
	wantLabels["org.opencontainers.image.version"] = "v2"
	// The command's health gate (defaults here), for a recovery after a crash.
	wantLabels[nodeupdater.LabelHealthGate] = fmt.Sprintf(`{"min_healthy_ms":%d,"timeout_ms":%d}`, nodeupdater.DefaultMinHealthy.Milliseconds(), nodeupdater.DefaultHealthTimeout.Milliseconds())
	// The command and upgrade that made it, so a recovery's events land in
	// that upgrade's history.
	wantLabels[nodeupdater.LabelCommand], wantLabels[nodeupdater.LabelUpgrade] = cmd.ID(), events.UpgradeID(cmd)
	if !maps.Equal(now.Config.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", now.Config.Labels, wantLabels)
	}
	if !slices.Equal(now.HostConfig.Binds, old.HostConfig.Binds) {
		t.Errorf("binds %v, want %v", now.HostConfig.Binds, old.HostConfig.Binds)
	}
	mounts := func(c container.InspectResponse) []string {
		var out []string
		for _, m := range c.Mounts {
			out = append(out, fmt.Sprintf("%s %s%s -> %s rw=%v", m.Type, m.Name, m.Source, m.Destination, m.RW))
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(mounts(now), mounts(old)) {
		t.Errorf("mounts %v, want %v", mounts(now), mounts(old))
	}
	for _, n := range []string{e.net1, e.net2} {
		if got, want := userAliases(now, n), userAliases(old, n); !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("aliases on %s: %v, want %v", n, got, want)
		}
	}
	if ep := now.NetworkSettings.Networks[e.net1]; ep == nil || ep.IPAddress != ip || ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != ip {
		t.Errorf("endpoint on %s: %+v, want static %s", e.net1, ep, ip)
	}
	if now.HostConfig.RestartPolicy != old.HostConfig.RestartPolicy {
		t.Errorf("restart policy %+v, want %+v", now.HostConfig.RestartPolicy, old.HostConfig.RestartPolicy)
	}
	if !maps.EqualFunc(now.HostConfig.PortBindings, old.HostConfig.PortBindings, slices.Equal) {
		t.Errorf("port bindings %v, want %v", now.HostConfig.PortBindings, old.HostConfig.PortBindings)
	}
	if now.Config.Hostname != now.ID[:12] {
		t.Errorf("hostname %q: the old default hostname was carried over", now.Config.Hostname)
	}

	if !e.gone(t, old.ID) || !e.gone(t, name+nodeupdater.OldSuffix) {
		t.Errorf("old container still present after commit")
	}
	if _, err := e.cli.VolumeInspect(t.Context(), vol, client.VolumeInspectOptions{}); err != nil {
		t.Errorf("volume %s after update: %v", vol, err)
	}

	inv := inventory(t, e, node)
	i := slices.IndexFunc(inv.Containers, func(c events.ObservedContainer) bool { return c.Name == name })
	if i < 0 || inv.Containers[i].ImageID != e.v2.ID || inv.Containers[i].PreviousImage != e.v1.Ref || inv.Containers[i].Health != "healthy" {
		t.Errorf("inventory %+v", inv)
	}

	t.Run("same command again is unchanged", func(t *testing.T) {
		again := e.command(t, node, events.NodeUpdateRequested{Wave: 0, Containers: []events.ContainerTarget{{Container: name, Service: "web", Image: e.v2.Ref}}})
		got := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, again, 30*time.Second))
		if len(got.Results) != 1 || got.Results[0].Result != events.ResultUnchanged {
			t.Errorf("results %+v, want unchanged", got.Results)
		}
		if id := e.inspect(t, name).ID; id != now.ID {
			t.Errorf("container id changed from %s to %s", now.ID[:12], id[:12])
		}
		if slices.Contains(status.types(again), events.TypeContainerDraining) {
			t.Errorf("unchanged container was drained: %v", status.types(again))
		}
	})
}

func testRevert(t *testing.T, e *env, node string, status *watch) {
	name := e.prefix + "-rev"
	ip := e.ip(11)
	// The container's environment holds a password and its log prints it,
	// plus one in a password= pair: neither may reach container.reverted.
	const envSecret, lineSecret = "xyzzy-env-secret-1", "pw-in-line-7"
	old := e.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web", Network: e.net1, IPv4: ip.String(),
		Env: []string{"DB_PASSWORD=" + envSecret, "DEMO_LOG=connecting to db with " + envSecret + " (password=" + lineSecret + ")"}})

	cmd := e.command(t, node, events.NodeUpdateRequested{Wave: 1, Containers: []events.ContainerTarget{{Container: name, Image: e.never.Ref, HealthTimeoutMs: 20000}}})
	failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 60*time.Second))
	if failed.Step != nodeupdater.StepHealth || failed.Container != name || !strings.Contains(failed.Error, "unhealthy") {
		t.Errorf("failed event %+v", failed)
	}
	if len(failed.Results) != 1 || failed.Results[0].Result != events.ResultReverted {
		t.Errorf("failed results %+v", failed.Results)
	}
	reverted := dataAs[events.ContainerReverted](t, status.await(t, events.TypeContainerReverted, cmd, time.Second))
	if reverted.Step != nodeupdater.StepHealth || reverted.Image != e.never.Ref || reverted.Reason == "" || len(reverted.LastLogs) == 0 {
		t.Errorf("reverted event %+v", reverted)
	}
	if !slices.ContainsFunc(reverted.LastLogs, func(l string) bool { return strings.Contains(l, "never-healthy") }) {
		t.Errorf("last logs are not the failed container's: %q", reverted.LastLogs)
	}
	if !slices.ContainsFunc(reverted.LastLogs, func(l string) bool { return strings.Contains(l, "connecting to db with REDACTED (password=REDACTED)") }) {
		t.Errorf("the logged secrets are not shown redacted: %q", reverted.LastLogs)
	}
	for _, l := range reverted.LastLogs {
		if strings.Contains(l, envSecret) || strings.Contains(l, lineSecret) {
			t.Errorf("container.reverted carries a secret: %q", l)
		}
	}

	now := e.inspect(t, name)
	if now.ID != old.ID || now.Image != e.v1.ID || !now.State.Running || now.State.Health == nil || now.State.Health.Status != container.Healthy {
		t.Fatalf("after revert: id %s (want %s) image %s state %+v", now.ID[:12], old.ID[:12], now.Image, now.State)
	}
	if v := version(t, ip); v != "v1" {
		t.Errorf("GET / reports %q after revert, want v1", v)
	}
	if !e.gone(t, name+nodeupdater.OldSuffix) {
		t.Error("renamed old container left behind")
	}
	assertOnlyOne(t, e, node, name)
}

// assertOnlyOne checks that exactly one container of the node answers to
// name or its old name: no failed new container is left.
func assertOnlyOne(t *testing.T, e *env, node, name string) {
	t.Helper()
	list, err := e.cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", events.LabelNode+"="+node)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range list.Items {
		for _, cn := range c.Names {
			if strings.TrimPrefix(cn, "/") == name || strings.TrimPrefix(cn, "/") == name+nodeupdater.OldSuffix {
				n++
			}
		}
	}
	if n != 1 {
		t.Errorf("%d containers named %s or its old name, want 1", n, name)
	}
}

func testPullMissing(t *testing.T, e *env, node string, status *watch) {
	name := e.prefix + "-pull"
	old := e.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web"})
	missing := e.reg.Addr() + "/nu-" + e.runID + "/web:does-not-exist"

	cmd := e.command(t, node, events.NodeUpdateRequested{Wave: 2, Containers: []events.ContainerTarget{{Container: name, Image: missing}}})
	failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 30*time.Second))
	if failed.Step != nodeupdater.StepPull || failed.Container != name || !strings.Contains(failed.Error, "not found") {
		t.Errorf("failed event %+v", failed)
	}
	if got := status.types(cmd); !slices.Equal(got, []string{events.TypeNodeUpdateFailed}) {
		t.Errorf("status events %v, want only the failure", got)
	}
	now := e.inspect(t, name)
	if now.ID != old.ID || !now.State.Running || now.State.StartedAt != old.State.StartedAt {
		t.Errorf("container touched: id %s started %s (was %s)", now.ID[:12], now.State.StartedAt, old.State.StartedAt)
	}

	t.Run("unknown container", func(t *testing.T) {
		cmd := e.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: name + "-nope", Image: e.v2.Ref}}})
		failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 30*time.Second))
		if failed.Step != nodeupdater.StepLookup || !strings.Contains(failed.Error, name+"-nope") {
			t.Errorf("failed event %+v", failed)
		}
	})
}

func testWorkloadHost(t *testing.T, e *env, node string, status, rejected *watch) {
	name := e.prefix + "-vms"
	old := e.container(t, testkit.ContainerOpts{
		Name: name, Node: node, Service: "compute",
		Labels: map[string]string{events.LabelWorkloadHost: "true"},
		Env:    []string{"DEMO_MODE=workload-host"},
	})
	cmd := e.command(t, node, events.NodeUpdateRequested{Wave: 3, Containers: []events.ContainerTarget{{Container: name, Image: e.v2.Ref}}})
	failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 30*time.Second))
	if failed.Step != nodeupdater.StepDrainCheck || !strings.Contains(failed.Error, "drain") {
		t.Errorf("failed event %+v", failed)
	}
	var rej events.EventRejected
	poll(t, 10*time.Second, "rejection of the command", func() bool {
		rejected.mu.Lock()
		defer rejected.mu.Unlock()
		for _, ev := range rejected.evs {
			if r, err := events.DataAs[events.EventRejected](ev); err == nil && r.EventID == cmd.ID() {
				rej = r
				return true
			}
		}
		return false
	})
	if !strings.Contains(rej.Reason, "drain") {
		t.Errorf("rejection reason %q", rej.Reason)
	}
	now := e.inspect(t, name)
	if now.ID != old.ID || !now.State.Running || now.State.StartedAt != old.State.StartedAt {
		t.Errorf("workload host was touched: started %s (was %s), running %v", now.State.StartedAt, old.State.StartedAt, now.State.Running)
	}
}

func testCloseMidReplacement(t *testing.T, e *env) {
	node := "n2-" + e.runID
	name := e.prefix + "-slow"
	status := e.watch(t, events.NodeStatusSubject(node))
	old := e.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web"})
	u, err := nodeupdater.New(nodeupdater.Config{Node: node, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, e.nats.JS, docker.New(e.cli))
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close(context.Background()) }) // a no-op after the Close below
	// The plain v2 image has no healthcheck, so the gate waits the full
	// minimum: long enough to be mid-replacement when Close comes.
	cmd := e.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: name, Image: e.v2Plain.Ref, MinHealthyMs: 60000, HealthTimeoutMs: 120000}}})
	poll(t, 30*time.Second, "the new container to run", func() bool {
		c, err := e.cli.ContainerInspect(t.Context(), name, client.ContainerInspectOptions{})
		return err == nil && c.Container.ID != old.ID && c.Container.State.Running
	})

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if err := u.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	now := e.inspect(t, name)
	if now.ID != old.ID || !now.State.Running || now.Image != e.v1.ID {
		t.Errorf("after close: id %s (want %s), running %v, image %s", now.ID[:12], old.ID[:12], now.State.Running, now.Image)
	}
	if !e.gone(t, name+nodeupdater.OldSuffix) {
		t.Error("renamed old container left behind")
	}
	assertOnlyOne(t, e, node, name)
	rev := dataAs[events.ContainerReverted](t, status.await(t, events.TypeContainerReverted, cmd, 10*time.Second))
	if rev.Step != nodeupdater.StepHealth {
		t.Errorf("reverted event %+v", rev)
	}
	// The command is left for redelivery, not reported as failed.
	if _, ok := status.find(events.TypeNodeUpdateFailed, cmd); ok {
		t.Error("a cancelled command was reported as failed")
	}
}

func testRecovery(t *testing.T, e *env) {
	node := "n3-" + e.runID
	ctx := t.Context()

	// Crash after the rename: the old container is stopped and renamed,
	// the new one was never created.
	stopped := e.prefix + "-rec-a"
	a := e.container(t, testkit.ContainerOpts{Name: stopped, Node: node, Service: "web"})
	timeout := 5
	if _, err := e.cli.ContainerStop(ctx, a.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ContainerRename(ctx, a.ID, client.ContainerRenameOptions{NewName: stopped + nodeupdater.OldSuffix}); err != nil {
		t.Fatal(err)
	}

	// Crash after the start: the new container runs, the old one waits
	// renamed for the commit.
	started := e.prefix + "-rec-b"
	b := e.container(t, testkit.ContainerOpts{Name: started, Node: node, Service: "web"})
	if _, err := e.cli.ContainerStop(ctx, b.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ContainerRename(ctx, b.ID, client.ContainerRenameOptions{NewName: started + nodeupdater.OldSuffix}); err != nil {
		t.Fatal(err)
	}
	if err := testkit.PullImage(ctx, e.cli, e.v2.Ref); err != nil {
		t.Fatal(err)
	}
	bNew := e.container(t, testkit.ContainerOpts{Name: started, Node: node, Service: "web", Image: e.v2.Ref})

	// Crash after the create: the new container exists but never started.
	created := e.prefix + "-rec-c"
	c := e.container(t, testkit.ContainerOpts{Name: created, Node: node, Service: "web"})
	if _, err := e.cli.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cli.ContainerRename(ctx, c.ID, client.ContainerRenameOptions{NewName: created + nodeupdater.OldSuffix}); err != nil {
		t.Fatal(err)
	}
	cNew, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: created,
		Config: &container.Config{Image: e.v2.Ref, Labels: map[string]string{
			testkit.LabelTest: e.runID, events.LabelNode: node, events.LabelService: "web",
		}},
	})
	if err != nil {
		t.Fatal(err)
	}

	e.updater(t, node) // Start recovers before it returns.

	now := e.inspect(t, created)
	if now.ID != c.ID || !now.State.Running {
		t.Errorf("%s: id %s (want %s) running %v", created, now.ID[:12], c.ID[:12], now.State.Running)
	}
	if !e.gone(t, cNew.ID) || !e.gone(t, created+nodeupdater.OldSuffix) {
		t.Errorf("%s: the unstarted new container or the renamed old one is left", created)
	}

	now = e.inspect(t, stopped)
	if now.ID != a.ID || !now.State.Running {
		t.Errorf("%s: id %s (want %s) running %v", stopped, now.ID[:12], a.ID[:12], now.State.Running)
	}
	if !e.gone(t, stopped+nodeupdater.OldSuffix) {
		t.Errorf("%s still present", stopped+nodeupdater.OldSuffix)
	}
	now = e.inspect(t, started)
	if now.ID != bNew.ID || !now.State.Running || now.Image != e.v2.ID {
		t.Errorf("%s: id %s (want the new %s) running %v", started, now.ID[:12], bNew.ID[:12], now.State.Running)
	}
	if !e.gone(t, b.ID) {
		t.Errorf("old %s not removed after the finished replacement", started)
	}
}

func inventory(t *testing.T, e *env, node string) events.NodeInventory {
	t.Helper()
	kv, err := e.nats.JS.KeyValue(t.Context(), events.BucketNodes)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), node)
	if err != nil {
		t.Fatalf("inventory of %s: %v", node, err)
	}
	var inv events.NodeInventory
	if err := json.Unmarshal(entry.Value(), &inv); err != nil {
		t.Fatal(err)
	}
	return inv
}
