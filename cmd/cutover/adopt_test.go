package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/fleetinfo"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/inventory"
)

func adoptInventory(t *testing.T, node string, names ...string) *inventory.Inventory {
	t.Helper()
	inv := &inventory.Inventory{
		Nodes:    map[string]inventory.Node{node: {Roles: []string{"control"}}, "other": {Roles: []string{"control"}}},
		Roles:    map[string]inventory.Role{"control": {}},
		Services: map[string]inventory.Service{},
	}
	for _, n := range names {
		svc := strings.ReplaceAll(n, "_", "-")
		inv.Services[svc] = inventory.Service{Containers: []inventory.Container{{Name: n, Image: "img/" + svc + ":1", WorkloadHost: n == "nova_libvirt"}}}
		r := inv.Roles["control"]
		r.Services = append(r.Services, svc)
		inv.Roles["control"] = r
	}
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestAdoptReport sorts the engine's containers as a node-updater with
// the inventory would: managed, adopted by name, missing, another node's
// (refused), unknown; a replacement's stand-in is not reported unknown.
func TestAdoptReport(t *testing.T) {
	inv := adoptInventory(t, "ctl01", "keystone", "nova_api", "nova_libvirt", "mariadb", "rabbitmq")
	engine := []fleetinfo.EngineContainer{
		{Name: "keystone"},
		{Name: "nova_api", Labels: map[string]string{events.LabelNode: "ctl01", events.LabelService: "nova-api"}},
		{Name: "nova_libvirt-cutover-old"},
		{Name: "nova_libvirt"},
		{Name: "mariadb", Labels: map[string]string{events.LabelNode: "ctl02"}},
		{Name: "horizon"},
		{Name: "web", Labels: map[string]string{events.LabelNode: "ctl09"}},
	}
	rep := fleetinfo.AdoptReport(inv, "ctl01", engine)
	var got []string
	for _, e := range rep.Containers {
		got = append(got, e.Status+" "+e.Container)
	}
	want := []string{"adopt keystone", "refused mariadb", "managed nova_api", "adopt nova_libvirt", "missing rabbitmq", "unknown horizon"}
	if !slices.Equal(got, want) {
		t.Errorf("report %v, want %v", got, want)
	}
	if !rep.Containers[3].WorkloadHost {
		t.Error("nova_libvirt is not reported as a workload host")
	}
}

// TestAdoptCommandOnDocker runs cutover adopt against the Docker engine
// with two unlabelled containers the inventory names and one it does not.
func TestAdoptCommandOnDocker(t *testing.T) {
	cli := testkit.DockerOrSkip(t)
	run := strings.ReplaceAll(filepath.Base(t.TempDir()), "TestAdoptCommandOnDocker", "")
	label := "test.kolla.run=adopt" + run
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = testkit.Cleanup(ctx, cli, label)
	})
	bin, err := testkit.BuildDemoApp(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := testkit.StartTestRegistry(t)
	img, err := reg.Push(t.Context(), bin, testkit.ImageSpec{Repo: "adopt" + run + "/kolla", Tag: "v1", Env: []string{"CUTOVER_TEST_RUN=" + run}})
	if err != nil {
		t.Fatal(err)
	}
	if err := testkit.PullImage(t.Context(), cli, img.Ref); err != nil {
		t.Fatal(err)
	}
	defer cli.ImageRemove(context.Background(), img.ID, client.ImageRemoveOptions{Force: true})
	prefix := "k" + run + "_"
	for _, n := range []string{"keystone", "glance_api", "horizon"} {
		_, err := cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{
			Name:       prefix + n,
			Config:     &container.Config{Image: img.Ref, Labels: map[string]string{"test.kolla.run": "adopt" + run}},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	inv := adoptInventory(t, "ctl01", prefix+"keystone", prefix+"glance_api", prefix+"memcached")
	raw, err := inventory.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(f, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t.Context(), "adopt", "--inventory", f, "--node", "ctl01", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep fleetinfo.AdoptResult
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, e := range rep.Containers {
		status[e.Container] = e.Status
	}
	for name, want := range map[string]string{prefix + "keystone": "adopt", prefix + "glance_api": "adopt", prefix + "memcached": "missing", prefix + "horizon": "unknown"} {
		if status[name] != want {
			t.Errorf("%s: %q, want %q (report %+v)", name, status[name], want, rep)
		}
	}
	r = runCLI(t.Context(), "adopt", "--inventory", f, "--node", "ctl01")
	if !strings.Contains(r.stdout, "to manage them: node-updater --node ctl01 --inventory "+f) {
		t.Errorf("text output lacks the node-updater line:\n%s", r.stdout)
	}
	if r := runCLI(t.Context(), "adopt", "--inventory", f, "--node", "nope"); r.code != 2 || !strings.Contains(r.stderr, `no node "nope"`) {
		t.Errorf("unknown node: exit %d, stderr %q", r.code, r.stderr)
	}
}
