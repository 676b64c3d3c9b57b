package nodeupdater_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/harness/testkit"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// features holds the extra images of TestFeatures.
type features struct {
	*env
	neverPlain, crashPlain, badEntry testkit.Image
}

// TestFeatures drives start-first, probes, drain acknowledgements,
// rollbacks and clear failures against the real engine. Each subtest has its
// own node and in-process updater.
func TestFeatures(t *testing.T) {
	e := newEnv(t)
	f := &features{
		env:        e,
		neverPlain: e.push(testkit.ImageSpec{Tag: "never-plain", Version: "v3", Mode: "never-healthy"}),
		crashPlain: e.push(testkit.ImageSpec{Tag: "crash-plain", Version: "v4", Mode: "crash"}),
		badEntry:   e.push(testkit.ImageSpec{Tag: "bad-entry", Version: "v5", Entrypoint: []string{"/does-not-exist"}}),
	}
	t.Run("start-first keeps a copy running and reports no interruption", f.testStartFirst)
	t.Run("start-first never-healthy reverts without touching the old container", f.testStartFirstRevert)
	t.Run("probes", f.testProbes)
	t.Run("drain acknowledgement", f.testDrainAck)
	t.Run("rollback to the previous image", f.testRollback)
	t.Run("clear failures", f.testFailures)
	t.Run("workload VMs keep their PIDs while the compute sibling is upgraded", f.testWorkloadSibling)
}

// pids returns the host PIDs of a container's processes, sorted.
func (f *features) pids(t *testing.T, id string) []string {
	t.Helper()
	top, err := f.cli.ContainerTop(t.Context(), id, client.ContainerTopOptions{})
	if err != nil {
		t.Fatalf("top %s: %v", id[:12], err)
	}
	col := slices.Index(top.Titles, "PID")
	if col < 0 {
		t.Fatalf("top titles %v have no PID", top.Titles)
	}
	var out []string
	for _, p := range top.Processes {
		out = append(out, p[col])
	}
	slices.Sort(out)
	return out
}

func (f *features) testWorkloadSibling(t *testing.T) {
	node, status := f.setup(t, "wl")
	host := f.container(t, testkit.ContainerOpts{
		Name: f.prefix + "-libvirt", Node: node, Service: "libvirt",
		Labels: map[string]string{events.LabelWorkloadHost: "true"},
		Env:    []string{"DEMO_MODE=workload-host"},
	})
	var before []string
	poll(t, 20*time.Second, "the workload host's VM processes", func() bool {
		before = f.pids(t, host.ID)
		return len(before) >= 4 // the host process and its three VMs
	})
	compute := f.prefix + "-compute"
	f.container(t, testkit.ContainerOpts{Name: compute, Node: node, Service: "compute"})

	cmd := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: compute, Image: f.v2.Ref}}})
	done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, cmd, 60*time.Second))
	if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced {
		t.Fatalf("results %+v", done.Results)
	}
	now := f.inspect(t, host.ID)
	if now.State.StartedAt != host.State.StartedAt || !now.State.Running {
		t.Errorf("workload host restarted: started %s (was %s)", now.State.StartedAt, host.State.StartedAt)
	}
	// Every process that ran before still runs: the VMs were not restarted.
	// The image's HEALTHCHECK (`/app health`) may add a short-lived process
	// of its own, so extra PIDs are not a failure; a missing one is.
	after := f.pids(t, host.ID)
	for _, pid := range before {
		if !slices.Contains(after, pid) {
			t.Errorf("VM process %s is gone: PIDs were %v, now %v", pid, before, after)
		}
	}
}

// setup starts an updater for a fresh node and watches its status.
func (f *features) setup(t *testing.T, tag string) (node string, status *watch) {
	t.Helper()
	node = tag + "-" + f.runID
	status = f.watch(t, events.NodeStatusSubject(node))
	f.updater(t, node)
	return node, status
}

func (f *features) testStartFirst(t *testing.T) {
	node, status := f.setup(t, "sf")
	name := f.prefix + "-sf"
	old := f.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web", Network: f.net1, Aliases: []string{"sf"}})

	// Watch the engine during the update: some copy must run at every look.
	var none atomic.Int32
	var maxRunning atomic.Int32
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			list, err := f.cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", events.LabelNode+"="+node)})
			if err == nil {
				n := int32(len(list.Items))
				if n == 0 {
					none.Add(1)
				}
				if n > maxRunning.Load() {
					maxRunning.Store(n)
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	cmd := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
		Container: name, Image: f.v2Plain.Ref, Strategy: nodeupdater.StrategyStartFirst, MinHealthyMs: 1000,
	}}})
	done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, cmd, 90*time.Second))
	stop()
	wg.Wait()
	if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced || done.Results[0].InterruptionMs != 0 {
		t.Errorf("results %+v, want replaced with no interruption", done.Results)
	}
	if n := none.Load(); n != 0 {
		t.Errorf("no container of the service ran at %d looks during the start-first update", n)
	}
	if maxRunning.Load() != 2 {
		t.Errorf("at most %d containers ran at once, want 2 (the new one beside the old one)", maxRunning.Load())
	}
	now := f.inspect(t, name)
	if now.ID == old.ID || now.Image != f.v2Plain.ID || !now.State.Running {
		t.Errorf("after start-first: id %s image %s running %v", now.ID[:12], now.Image, now.State.Running)
	}
	if got, want := userAliases(now, f.net1), userAliases(old, f.net1); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("aliases %v, want %v", got, want)
	}
	if !f.gone(t, old.ID) || !f.gone(t, name+nodeupdater.NewSuffix) || !f.gone(t, name+nodeupdater.OldSuffix) {
		t.Error("old or temporary container left behind")
	}
}

func (f *features) testStartFirstRevert(t *testing.T) {
	node, status := f.setup(t, "sfr")
	name := f.prefix + "-sfr"
	old := f.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web"})
	cmd := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
		Container: name, Image: f.never.Ref, Strategy: nodeupdater.StrategyStartFirst, HealthTimeoutMs: 20000,
	}}})
	failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 60*time.Second))
	if failed.Step != nodeupdater.StepHealth || len(failed.Results) != 1 || failed.Results[0].Result != events.ResultReverted {
		t.Errorf("failed %+v", failed)
	}
	now := f.inspect(t, name)
	if now.ID != old.ID || now.State.StartedAt != old.State.StartedAt || !now.State.Running {
		t.Errorf("old container was touched: started %s (was %s) running %v", now.State.StartedAt, old.State.StartedAt, now.State.Running)
	}
	assertOnlyOne(t, f.env, node, name)
	if !f.gone(t, name+nodeupdater.NewSuffix) {
		t.Error("failed start-first container left behind")
	}
}

func (f *features) testProbes(t *testing.T) {
	tests := []struct {
		name    string
		image   testkit.Image
		restart string
		probe   *events.Probe
		wantErr string // "" for replaced
		// timeoutMs, when set, replaces the gate's 4 s: a failing exec
		// probe must answer at least once before the gate gives up, and
		// docker exec can take seconds on a loaded machine.
		timeoutMs int64
	}{
		{name: "http passes", image: f.v2Plain, probe: &events.Probe{Type: events.ProbeHTTP, Port: 8080, Path: "/healthz"}},
		{name: "tcp passes", image: f.v2Plain, probe: &events.Probe{Type: events.ProbeTCP, Port: 8080}},
		{name: "exec passes", image: f.v2Plain, probe: &events.Probe{Type: events.ProbeExec, Command: []string{"/app", "health"}}},
		{name: "http fails", image: f.neverPlain, probe: &events.Probe{Type: events.ProbeHTTP, Port: 8080, Path: "/healthz", IntervalMs: 200}, wantErr: "status 503"},
		{name: "exec fails", image: f.neverPlain, probe: &events.Probe{Type: events.ProbeExec, Command: []string{"/app", "health"}, TimeoutMs: 6000}, wantErr: "exited with 1", timeoutMs: 8000},
		{name: "restart loop", image: f.crashPlain, restart: "always", wantErr: "restart"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, status := f.setup(t, fmt.Sprintf("pr%d", i))
			name := fmt.Sprintf("%s-probe-%d", f.prefix, i)
			old := f.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web", Network: f.net1, RestartPolicy: tc.restart})
			timeoutMs := int64(4000)
			if tc.timeoutMs > 0 {
				timeoutMs = tc.timeoutMs
			}
			cmd := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
				Container: name, Image: tc.image.Ref, MinHealthyMs: 500, HealthTimeoutMs: timeoutMs, Probe: tc.probe,
			}}})
			if tc.wantErr == "" {
				done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, cmd, 60*time.Second))
				if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced {
					t.Errorf("results %+v", done.Results)
				}
				return
			}
			failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 60*time.Second))
			if failed.Step != nodeupdater.StepHealth || !strings.Contains(failed.Error, tc.wantErr) {
				t.Errorf("failed step %s error %q, want health and %q", failed.Step, failed.Error, tc.wantErr)
			}
			now := f.inspect(t, name)
			if now.ID != old.ID || !now.State.Running || now.Image != f.v1.ID {
				t.Errorf("after revert: id %s (want %s) running %v", now.ID[:12], old.ID[:12], now.State.Running)
			}
			assertOnlyOne(t, f.env, node, name)
		})
	}
}

// acker is a fake load-balancer agent: it answers draining events of node
// with dev.cutover.container.drained after looking at the container.
type acker struct {
	mu          sync.Mutex
	oldRunning  bool // the old container ran when the agent acknowledged
	acknowledge bool
}

func (f *features) startAcker(t *testing.T, node string, answer bool) *acker {
	t.Helper()
	a := &acker{acknowledge: answer}
	cons, err := f.nats.JS.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.NodeStatusSubject(node)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(f.nats.JS)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(m.Headers(), m.Data())
		if err != nil || ev.Type() != events.TypeContainerDraining || !a.acknowledge {
			return
		}
		d, err := events.DataAs[events.ContainerDraining](ev)
		if err != nil {
			return
		}
		// A real agent takes a moment to take the backend out; the old
		// container must still serve meanwhile.
		time.Sleep(300 * time.Millisecond)
		c, err := f.cli.ContainerInspect(context.Background(), d.Container+nodeupdater.OldSuffix, client.ContainerInspectOptions{})
		running := false
		if err != nil {
			c, err = f.cli.ContainerInspect(context.Background(), d.Container, client.ContainerInspectOptions{})
		}
		if err == nil {
			running = c.Container.State.Running
		}
		a.mu.Lock()
		a.oldRunning = running
		a.mu.Unlock()
		ack := events.MustNew(events.Source("haproxy-agent", node), events.ContainerDrained{Container: d.Container, Agent: "fake"},
			events.CausedBy(ev), events.WithNode(node))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := pub.Publish(ctx, ack); err != nil {
			t.Errorf("publish drain ack: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return a
}

func (f *features) testDrainAck(t *testing.T) {
	tests := []struct {
		name     string
		answer   bool
		required bool
		wantStep string // "" for replaced
	}{
		{name: "acknowledged", answer: true, required: true},
		{name: "no answer, required", answer: false, required: true, wantStep: nodeupdater.StepDrain},
		{name: "no answer, optional", answer: false, required: false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node, status := f.setup(t, fmt.Sprintf("dr%d", i))
			name := fmt.Sprintf("%s-drain-%d", f.prefix, i)
			a := f.startAcker(t, node, tc.answer)
			old := f.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web"})
			cmd := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
				Container: name, Image: f.v2Plain.Ref, MinHealthyMs: 300, DrainAckTimeoutMs: 1500, DrainAckRequired: tc.required,
			}}})
			if tc.wantStep != "" {
				failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 60*time.Second))
				if failed.Step != tc.wantStep || !strings.Contains(failed.Error, events.TypeContainerDrained) {
					t.Errorf("failed %+v", failed)
				}
				now := f.inspect(t, name)
				if now.ID != old.ID || now.State.StartedAt != old.State.StartedAt {
					t.Errorf("container touched after a refused drain")
				}
				return
			}
			done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, cmd, 60*time.Second))
			if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced {
				t.Errorf("results %+v", done.Results)
			}
			if tc.answer {
				a.mu.Lock()
				defer a.mu.Unlock()
				if !a.oldRunning {
					t.Error("the old container was stopped before the drain was acknowledged")
				}
			}
		})
	}
}

func (f *features) testRollback(t *testing.T) {
	node := "rb-" + f.runID
	status := f.watch(t, events.NodeStatusSubject(node))
	name := f.prefix + "-rb"
	never := f.prefix + "-rb-never"
	same := f.prefix + "-rb-same"
	f.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web"})
	f.container(t, testkit.ContainerOpts{Name: never, Node: node, Service: "web"})
	f.container(t, testkit.ContainerOpts{Name: same, Node: node, Service: "web"})
	// A previous inventory says "same" ran v1 before: the image it runs now.
	kv, err := f.nats.JS.KeyValue(t.Context(), events.BucketNodes)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(events.NodeInventory{Node: node, Containers: []events.ObservedContainer{{Name: same, PreviousImage: f.v1.Ref}}})
	if _, err := kv.Put(t.Context(), node, b); err != nil {
		t.Fatal(err)
	}
	f.updater(t, node)

	up := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: name, Image: f.v2Plain.Ref, MinHealthyMs: 300}}})
	status.await(t, events.TypeNodeUpdateCompleted, up, 60*time.Second)
	if inv := inventory(t, f.env, node); !strings.Contains(string(mustJSON(t, inv)), `"previous_image":"`+f.v1.Ref+`"`) {
		t.Errorf("inventory does not record v1 as previous: %s", mustJSON(t, inv))
	}

	back := f.command(t, node, events.NodeUpdateRequested{Rollback: true, Containers: []events.ContainerTarget{{Container: name, MinHealthyMs: 300}}})
	done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, back, 60*time.Second))
	if !done.Rollback || len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced || done.Results[0].ToImage != f.v1.Ref {
		t.Errorf("rollback results %+v", done)
	}
	rep := dataAs[events.ContainerReplaced](t, status.await(t, events.TypeContainerReplaced, back, time.Second))
	if rep.FromImage != f.v2Plain.Ref || rep.ToImage != f.v1.Ref {
		t.Errorf("rollback replaced event %+v", rep)
	}
	if now := f.inspect(t, name); now.Image != f.v1.ID {
		t.Errorf("after rollback runs %s, want v1", now.Image)
	}

	for _, tc := range []struct{ container, want string }{
		{never, "no previous image"},
		{same, "ping-pong"},
	} {
		before := f.inspect(t, tc.container)
		cmd := f.command(t, node, events.NodeUpdateRequested{Rollback: true, Containers: []events.ContainerTarget{{Container: tc.container}}})
		failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 30*time.Second))
		if failed.Step != nodeupdater.StepRollback || failed.Container != tc.container || !strings.Contains(failed.Error, tc.want) {
			t.Errorf("%s: failed %+v, want %q", tc.container, failed, tc.want)
		}
		if now := f.inspect(t, tc.container); now.ID != before.ID || now.State.StartedAt != before.State.StartedAt {
			t.Errorf("%s was touched by a refused rollback", tc.container)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badCreate is the docker runtime with a create that asks the engine for an
// impossible memory limit, as a broken configuration would.
type badCreate struct {
	*docker.Runtime
	cli *client.Client
}

func (b badCreate) CreateReplacement(ctx context.Context, _, name, image string, _ map[string]string) (string, error) {
	res, err := b.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: image},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 1024}},
	})
	if err != nil {
		return "", err
	}
	return res.ID, nil
}

func (f *features) testFailures(t *testing.T) {
	tests := []struct {
		name     string
		image    func() string
		prepare  func(t *testing.T, name string) // before the command
		runtime  nodeupdater.Runtime
		wantStep string
		wantErr  string // the engine's words
	}{
		{
			// Nothing listens on the port of a listener closed at once.
			name: "registry down", image: func() string { return natstest.FreeAddr(t) + "/gone/web:v2" },
			wantStep: nodeupdater.StepPull, wantErr: "connection refused",
		},
		{
			name: "start failure", image: func() string { return f.badEntry.Ref },
			wantStep: nodeupdater.StepStart, wantErr: "/does-not-exist",
		},
		{
			name: "name conflict", image: func() string { return f.v2Plain.Ref },
			prepare: func(t *testing.T, name string) {
				// Someone else's container squats the name cutover renames to.
				_, err := f.cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
					Name:   name + nodeupdater.OldSuffix,
					Config: &container.Config{Image: f.v1.Ref, Labels: map[string]string{testkit.LabelTest: f.runID}},
				})
				if err != nil {
					t.Fatal(err)
				}
			},
			wantStep: nodeupdater.StepRename, wantErr: "already in use",
		},
		{
			name: "bad config", image: func() string { return f.v2Plain.Ref },
			runtime:  badCreate{Runtime: docker.New(f.cli), cli: f.cli},
			wantStep: nodeupdater.StepCreate, wantErr: "memory",
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node := fmt.Sprintf("fl%d-%s", i, f.runID)
			status := f.watch(t, events.NodeStatusSubject(node))
			name := fmt.Sprintf("%s-fail-%d", f.prefix, i)
			old := f.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web", Network: f.net1, IPv4: f.ip(byte(40 + i)).String()})
			if tc.prepare != nil {
				tc.prepare(t, name)
			}
			rt := tc.runtime
			if rt == nil {
				rt = docker.New(f.cli)
			}
			u, err := nodeupdater.New(nodeupdater.Config{Node: node, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, f.nats.JS, rt)
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = u.Close(context.Background()) })

			cmd := f.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: name, Image: tc.image(), MinHealthyMs: 300}}})
			failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 60*time.Second))
			if failed.Step != tc.wantStep || failed.Container != name || !strings.Contains(failed.Error, tc.wantErr) {
				t.Errorf("failed step %q container %q error %q; want step %q and the engine's %q", failed.Step, failed.Container, failed.Error, tc.wantStep, tc.wantErr)
			}
			now := f.inspect(t, name)
			if now.ID != old.ID || !now.State.Running || now.Image != f.v1.ID {
				t.Errorf("old container does not serve: id %s running %v", now.ID[:12], now.State.Running)
			}
			if v := version(t, f.ip(byte(40+i))); v != "v1" {
				t.Errorf("GET / = %q, want v1", v)
			}
		})
	}
}
