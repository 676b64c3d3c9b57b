package nodeupdater_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
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
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// labelKollaRun marks what the kolla-shaped tests create. It is not a
// cutover label: kolla-ansible's containers carry none.
const labelKollaRun = "test.kolla.run"

// kollaContainer creates and starts a container the way kolla-ansible does:
// an underscore name, host networking, its config directory
// /etc/kolla/<svc>/ bound read-only on /var/lib/kolla/config_files/, the
// shared kolla_logs volume on /var/log/kolla/, /etc/localtime, the
// KOLLA_CONFIG_STRATEGY environment and restart unless-stopped; nova_libvirt
// also gets the host PID namespace and privileges. No cutover label.
func (e *env) kollaContainer(t *testing.T, name, svc string, libvirt bool) container.InspectResponse {
	t.Helper()
	cfgDir := filepath.Join(e.kollaRoot(t), "etc", "kolla", svc)
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(`{"command": "/app", "config_files": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := "kolla_logs_" + e.runID
	if _, err := e.cli.VolumeCreate(t.Context(), client.VolumeCreateOptions{Name: logs, Labels: map[string]string{labelKollaRun: e.runID}}); err != nil {
		t.Fatal(err)
	}
	host := &container.HostConfig{
		NetworkMode:   "host",
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Binds: []string{
			cfgDir + "/:/var/lib/kolla/config_files/:ro",
			"/etc/localtime:/etc/localtime:ro",
			logs + ":/var/log/kolla/",
		},
	}
	if libvirt {
		host.PidMode, host.Privileged = "host", true
	}
	create := func() string {
		created, err := e.cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
			Name: name,
			Config: &container.Config{
				Image:  e.v1.Ref,
				Env:    []string{"KOLLA_CONFIG_STRATEGY=COPY_ALWAYS", "KOLLA_SERVICE_NAME=" + svc, "DEMO_LISTEN=" + natstest.FreeAddr(t)},
				Labels: map[string]string{labelKollaRun: e.runID},
			},
			HostConfig: host,
		})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return created.ID
	}
	id := create()
	if _, err := e.cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
		// Some engines (a sandboxed VM without all capabilities) cannot
		// run privileged containers at all; say so and keep the rest of
		// nova_libvirt's shape (host PID namespace).
		if !host.Privileged || !strings.Contains(err.Error(), "operation not permitted") {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Logf("this engine cannot start privileged containers (%v); %s runs with pid host but not privileged", err, name)
		if _, err := e.cli.ContainerRemove(t.Context(), id, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		host.Privileged = false
		id = create()
		if _, err := e.cli.ContainerStart(t.Context(), id, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
	}
	created := struct{ ID string }{id}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, err := testkit.WaitHealth(ctx, e.cli, created.ID, container.Healthy)
	if err != nil {
		t.Fatalf("container %s: %v", name, err)
	}
	for k := range c.Config.Labels {
		if strings.HasPrefix(k, "dev.cutover.") {
			t.Fatalf("kolla-shaped %s carries cutover label %s", name, k)
		}
	}
	return c
}

// kollaRoot is the run's stand-in for the host's /, removed with the kolla
// containers at the end of the test.
func (e *env) kollaRoot(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "cutover-kolla-"+e.runID)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := testkit.Cleanup(ctx, e.cli, labelKollaRun+"="+e.runID); err != nil {
				t.Errorf("clean up kolla containers: %v", err)
			}
			_ = os.RemoveAll(dir)
		})
	}
	return dir
}

func (e *env) adoptingUpdater(t *testing.T, node string, adopt map[string]nodeupdater.Adopted) {
	t.Helper()
	u, err := nodeupdater.New(nodeupdater.Config{
		Node: node, AgentVersion: "test", Adopt: adopt,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	}, e.nats.JS, docker.New(e.cli))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, u, 30*time.Second)
}

// userSet is what an operator (kolla-ansible) set on a container: its
// inspection minus what the image supplies.
type userSet struct {
	Name       string
	HostConfig string // JSON of the whole HostConfig
	Env        []string
	Labels     map[string]string
	Mounts     []string
	Config     string // JSON of the remaining user-settable Config fields
}

func (e *env) userSetOf(t *testing.T, c container.InspectResponse) userSet {
	t.Helper()
	img, err := e.cli.ImageInspect(t.Context(), c.Image)
	if err != nil {
		t.Fatalf("inspect image %s: %v", c.Image, err)
	}
	u := userSet{Name: c.Name, Labels: map[string]string{}}
	hc, _ := json.Marshal(c.HostConfig)
	u.HostConfig = string(hc)
	for _, kv := range c.Config.Env {
		if !slices.Contains(img.Config.Env, kv) {
			u.Env = append(u.Env, kv)
		}
	}
	slices.Sort(u.Env)
	for k, v := range c.Config.Labels {
		if iv, ok := img.Config.Labels[k]; !ok || iv != v {
			u.Labels[k] = v
		}
	}
	for _, m := range c.Mounts {
		u.Mounts = append(u.Mounts, fmt.Sprintf("%s %s %s→%s rw=%v %s", m.Type, m.Name, m.Source, m.Destination, m.RW, m.Mode))
	}
	slices.Sort(u.Mounts)
	rest, _ := json.Marshal(struct {
		Hostname, Domainname, User, StopSignal string
		Tty, OpenStdin                         bool
		StopTimeout                            *int
	}{c.Config.Hostname, c.Config.Domainname, c.Config.User, c.Config.StopSignal, c.Config.Tty, c.Config.OpenStdin, c.Config.StopTimeout})
	u.Config = string(rest)
	return u
}

// TestAdoptKollaContainers adopts three unlabelled kolla-shaped containers
// on two nodes by name, upgrades them, and checks that every user-set field
// of each new container equals the old one's, but for the image and the
// labels cutover adds. A fourth unlabelled container the inventory does not
// name is never touched.
func TestAdoptKollaContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("Docker test; skipped with -short")
	}
	e := newEnv(t)
	ctl, cmp := "kctl-"+e.runID, "kcmp-"+e.runID
	tag := "k" + e.runID + "_"
	keystone, l3, libvirt, horizon := tag+"keystone", tag+"neutron_l3_agent", tag+"nova_libvirt", tag+"horizon"
	old := map[string]container.InspectResponse{
		keystone: e.kollaContainer(t, keystone, "keystone", false),
		l3:       e.kollaContainer(t, l3, "neutron-l3-agent", false),
		libvirt:  e.kollaContainer(t, libvirt, "nova-libvirt", true),
	}
	stray := e.kollaContainer(t, horizon, "horizon", false)
	before := map[string]userSet{}
	for n, c := range old {
		before[n] = e.userSetOf(t, c)
	}

	statusCtl, statusCmp := e.watch(t, events.NodeStatusSubject(ctl)), e.watch(t, events.NodeStatusSubject(cmp))
	e.adoptingUpdater(t, ctl, map[string]nodeupdater.Adopted{keystone: {Service: "keystone"}, l3: {Service: "neutron-l3-agent"}})
	e.adoptingUpdater(t, cmp, map[string]nodeupdater.Adopted{libvirt: {Service: "nova-libvirt", WorkloadHost: true}})

	// The inventories name the adopted containers with their services;
	// the stray one appears nowhere.
	poll(t, 30*time.Second, "both inventories", func() bool {
		a, b := inventory(t, e, ctl), inventory(t, e, cmp)
		return len(a.Containers) == 2 && len(b.Containers) == 1
	})
	for _, node := range []string{ctl, cmp} {
		for _, c := range inventory(t, e, node).Containers {
			if c.Name == horizon {
				t.Errorf("%s reports %s, which the inventory does not name", node, horizon)
			}
			want := map[string]string{keystone: "keystone", l3: "neutron-l3-agent", libvirt: "nova-libvirt"}[c.Name]
			if c.Service != want || c.WorkloadHost != (c.Name == libvirt) {
				t.Errorf("%s reports %+v, want service %s", node, c, want)
			}
		}
	}

	// The workload host is refused until the node is drained: adoption
	// carries the inventory's workload_host.
	refused := e.command(t, cmp, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: libvirt, Service: "nova-libvirt", Image: e.v2Plain.Ref}}})
	statusCmp.await(t, events.TypeNodeUpdateFailed, refused, 30*time.Second)
	// A container the inventory does not name is not found.
	strayCmd := e.command(t, ctl, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: horizon, Service: "horizon", Image: e.v2Plain.Ref}}})
	statusCtl.await(t, events.TypeNodeUpdateFailed, strayCmd, 30*time.Second)

	target := func(name, svc string) events.ContainerTarget {
		return events.ContainerTarget{Container: name, Service: svc, Image: e.v2Plain.Ref, MinHealthyMs: 500, HealthTimeoutMs: 60000}
	}
	cmdCtl := e.command(t, ctl, events.NodeUpdateRequested{Containers: []events.ContainerTarget{target(keystone, "keystone"), target(l3, "neutron-l3-agent")}})
	cmdCmp := e.command(t, cmp, events.NodeUpdateRequested{Drained: true, Containers: []events.ContainerTarget{target(libvirt, "nova-libvirt")}})
	for _, w := range []struct {
		s   *watch
		cmd events.Event
		n   int
	}{{statusCtl, cmdCtl, 2}, {statusCmp, cmdCmp, 1}} {
		done := dataAs[events.NodeUpdateCompleted](t, w.s.await(t, events.TypeNodeUpdateCompleted, w.cmd, 120*time.Second))
		if len(done.Results) != w.n {
			t.Fatalf("results %+v, want %d", done.Results, w.n)
		}
		for _, r := range done.Results {
			if r.Result != events.ResultReplaced {
				t.Errorf("%s: %s, want replaced", r.Container, r.Result)
			}
		}
	}

	nodeOf := map[string]string{keystone: ctl, l3: ctl, libvirt: cmp}
	serviceOf := map[string]string{keystone: "keystone", l3: "neutron-l3-agent", libvirt: "nova-libvirt"}
	for name, was := range old {
		now := e.inspect(t, name)
		if now.ID == was.ID || now.Image != e.v2Plain.ID || !now.State.Running {
			t.Errorf("%s: id %s (was %s), image %s, running %v; want a new container on v2", name, now.ID[:12], was.ID[:12], now.Image, now.State.Running)
		}
		if !e.gone(t, was.ID) {
			t.Errorf("%s: the old container is still there", name)
		}
		a, b := before[name], e.userSetOf(t, now)
		added := map[string]string{}
		for k, v := range b.Labels {
			if _, had := a.Labels[k]; !had {
				added[k] = v
				delete(b.Labels, k)
			}
		}
		want := []string{events.LabelNode, events.LabelService, nodeupdater.LabelHealthGate, nodeupdater.LabelCommand, nodeupdater.LabelUpgrade}
		if name == libvirt {
			want = append(want, events.LabelWorkloadHost)
		}
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(added)); !slices.Equal(got, want) {
			t.Errorf("%s: added labels %v, want %v", name, got, want)
		}
		if added[events.LabelNode] != nodeOf[name] || added[events.LabelService] != serviceOf[name] {
			t.Errorf("%s: added %v, want node %s and service %s", name, added, nodeOf[name], serviceOf[name])
		}
		if name == libvirt && added[events.LabelWorkloadHost] != "true" {
			t.Errorf("%s: no workload-host label: %v", name, added)
		}
		a.Labels, b.Labels = sortedMap(a.Labels), sortedMap(b.Labels)
		if !equalJSON(a, b) {
			t.Errorf("%s: user-set fields changed:\nbefore %+v\nafter  %+v", name, a, b)
		}
		if name == libvirt && now.HostConfig.PidMode != "host" {
			t.Errorf("%s: pid mode %q, want host", name, now.HostConfig.PidMode)
		}
	}
	if now := e.inspect(t, horizon); now.ID != stray.ID || now.State.StartedAt != stray.State.StartedAt {
		t.Errorf("%s was touched", horizon)
	}
}

func sortedMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

func equalJSON(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestAdoptedCrashRecovery kills a real node-updater, given the inventory
// with --inventory, right after it started the replacement of an adopted
// kolla container, then starts it again: recovery finds the unlabelled
// old container by name and finishes the replacement like any other.
func TestAdoptedCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests build and run the node-updater binary; skipped with -short")
	}
	e := newEnv(t)
	buildUpdater(t)
	for i, step := range []string{nodeupdater.StepStop, nodeupdater.StepStart} {
		t.Run("after "+step, func(t *testing.T) {
			node := fmt.Sprintf("kcrash%d-%s", i, e.runID)
			name := fmt.Sprintf("k%s_%d_keystone", e.runID, i)
			old := e.kollaContainer(t, name, "keystone", false)
			inv := filepath.Join(t.TempDir(), "inventory.yaml")
			yaml := fmt.Sprintf("nodes:\n  %s: {roles: [control]}\nroles:\n  control: {services: [keystone]}\nservices:\n  keystone:\n    containers:\n      - {name: %s, image: %q}\n", node, name, e.v1.Ref)
			if err := os.WriteFile(inv, []byte(yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			status := e.watch(t, events.NodeStatusSubject(node))
			p := e.startProcess(t, node, step, "--inventory", inv)
			cmd := e.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
				Container: name, Service: "keystone", Image: e.v2Plain.Ref, MinHealthyMs: 500, HealthTimeoutMs: 60000,
			}}})
			p.awaitKilled(t, 90*time.Second)
			if _, err := e.cli.ContainerInspect(t.Context(), name+nodeupdater.OldSuffix, client.ContainerInspectOptions{}); err != nil {
				t.Fatalf("after the kill at %s: no %s%s: %v", step, name, nodeupdater.OldSuffix, err)
			}

			e.startProcess(t, node, "", "--inventory", inv)
			done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, cmd, 120*time.Second))
			if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced {
				t.Errorf("completed results %+v, want one replaced", done.Results)
			}
			now := e.inspect(t, name)
			if now.ID == old.ID || now.Image != e.v2Plain.ID || !now.State.Running || now.Config.Labels[events.LabelNode] != node {
				t.Errorf("at the end %s: id %s image %s running %v labels %v; want the new, labelled container", name, now.ID[:12], now.Image, now.State.Running, now.Config.Labels)
			}
			if !e.gone(t, old.ID) || !e.gone(t, name+nodeupdater.OldSuffix) {
				t.Error("the old container is still there after recovery")
			}
			if a, b := e.userSetOf(t, old), e.userSetOf(t, now); a.HostConfig != b.HostConfig || !slices.Equal(a.Env, b.Env) || !slices.Equal(a.Mounts, b.Mounts) {
				t.Errorf("recovery changed user-set fields:\nbefore %+v\nafter  %+v", a, b)
			}
		})
	}
}
