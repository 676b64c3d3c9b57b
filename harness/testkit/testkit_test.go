package testkit

import (
	"archive/tar"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// kit is what one test run set up: an engine client, a registry with the
// pushed images, and the names every Docker object of the run is keyed by.
type kit struct {
	cli    *client.Client
	reg    *Registry
	runID  string
	prefix string // name prefix of every container, volume and network
	labels map[string]string

	// Removed after the run's containers, which use them.
	networks []string
	images   []string // image IDs
}

func newKit(t *testing.T) *kit {
	t.Helper()
	cli := DockerOrSkip(t)
	reg := StartTestRegistry(t)

	runID := randomID(t)
	k := &kit{
		cli:    cli,
		reg:    reg,
		runID:  runID,
		prefix: "cutover-testkit-" + runID,
		labels: map[string]string{LabelTest: runID},
	}
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := Cleanup(ctx, cli, LabelTest+"="+runID); err != nil {
			t.Errorf("clean up run %s: %v", runID, err)
		}
		for _, name := range k.networks {
			if _, err := cli.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
				t.Errorf("remove network %s: %v", name, err)
			}
		}
		for _, id := range k.images {
			_, err := cli.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
			if err != nil && !cerrdefs.IsNotFound(err) {
				t.Errorf("remove image %s: %v", id, err)
			}
		}
	})
	return k
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	if _, err := crand.Read(b); err != nil {
		t.Fatalf("read random: %v", err)
	}
	return hex.EncodeToString(b)
}

// push pushes spec, pulls it through the engine and removes the pulled image
// when the run is cleaned up.
func (k *kit) push(t *testing.T, bin string, spec ImageSpec) Image {
	t.Helper()
	// Images are reproducible: equal specs give equal image IDs, and other
	// packages' tests push similar specs at the same time. A per-run variable
	// makes this run's IDs its own, so the force-removal by ID at the end
	// cannot pull an image from under another package's container.
	spec.Env = append(slices.Clone(spec.Env), "CUTOVER_TEST_RUN="+k.runID)
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[LabelTest] = k.runID
	img, err := k.reg.Push(t.Context(), bin, spec)
	if err != nil {
		t.Fatalf("push %s:%s: %v", spec.Repo, spec.Tag, err)
	}
	if err := PullImage(t.Context(), k.cli, img.Ref); err != nil {
		t.Fatalf("pull %s: %v", img.Ref, err)
	}
	k.images = append(k.images, img.ID)
	return img
}

// network creates a user bridge network on a random 10.x.y.0/24, retrying
// when the subnet collides with one that exists, and returns its name and
// subnet.
func (k *kit) network(t *testing.T) (string, netip.Prefix) {
	t.Helper()
	name := k.prefix + "-net"
	var errs []error
	for range 5 {
		subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + rand.IntN(150)), byte(rand.IntN(256)), 0}), 24)
		err := EnsureNetwork(t.Context(), k.cli, name, subnet.String())
		if err == nil {
			k.networks = append(k.networks, name)
			// Idempotent: a second call finds the network.
			if err := EnsureNetwork(t.Context(), k.cli, name, subnet.String()); err != nil {
				t.Fatalf("ensure existing network: %v", err)
			}
			return name, subnet
		}
		errs = append(errs, err)
	}
	t.Fatalf("create network: %v", errors.Join(errs...))
	return "", netip.Prefix{}
}

func (k *kit) create(t *testing.T, opts ContainerOpts) string {
	t.Helper()
	opts.Labels = k.labels
	id, err := CreateContainer(t.Context(), k.cli, opts)
	if err != nil {
		t.Fatalf("create container %s: %v", opts.Name, err)
	}
	return id
}

func (k *kit) inspect(t *testing.T, id string) container.InspectResponse {
	t.Helper()
	res, err := k.cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	return res.Container
}

func waitHealth(t *testing.T, cli *client.Client, id string, want container.HealthStatus) container.InspectResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := WaitHealth(ctx, cli, id, want)
	if err != nil {
		t.Fatalf("wait for %s: %v", want, err)
	}
	return c
}

type rootReply struct {
	Version  string `json:"version"`
	Hostname string `json:"hostname"`
	Mode     string `json:"mode"`
}

func httpDo(t *testing.T, method, url, body string) string {
	t.Helper()
	out, err := HTTP(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func getRoot(t *testing.T, ip netip.Addr) rootReply {
	t.Helper()
	var r rootReply
	body := httpDo(t, http.MethodGet, "http://"+ip.String()+":8080/", "")
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("decode GET /: %v (%q)", err, body)
	}
	return r
}

// readFile copies one file out of a container.
func readFile(ctx context.Context, cli *client.Client, id, path string) (string, error) {
	res, err := cli.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return "", fmt.Errorf("copy %s: %w", path, err)
	}
	defer res.Content.Close()
	tr := tar.NewReader(res.Content)
	if _, err := tr.Next(); err != nil {
		return "", fmt.Errorf("read %s archive: %w", path, err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return string(b), nil
}

func TestDockerKit(t *testing.T) {
	start := time.Now()
	k := newKit(t)
	bin, err := BuildDemoApp(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("build demoapp: %v", err)
	}
	t.Logf("built demoapp in %s", time.Since(start).Round(time.Millisecond))

	repo := "testkit-" + k.runID + "/web"
	migration := "CREATE TABLE t (id int);\n"
	extra := map[string]string{"/migrations/0001_init.up.sql": migration}
	v1 := k.push(t, bin, ImageSpec{Repo: repo, Tag: "v1", Version: "v1", Healthcheck: true, Extra: extra,
		Labels: map[string]string{"org.opencontainers.image.version": "v1"}})
	v2 := k.push(t, bin, ImageSpec{Repo: repo, Tag: "v2", Version: "v2", Healthcheck: true, Extra: extra})
	never := k.push(t, bin, ImageSpec{Repo: repo, Tag: "never", Version: "v3", Mode: "never-healthy", Healthcheck: true})
	crash := k.push(t, bin, ImageSpec{Repo: repo, Tag: "crash", Version: "v4", Mode: "crash"})
	t.Logf("pushed and pulled 4 images by %s", time.Since(start).Round(time.Millisecond))

	if v1.Digest == v2.Digest || v1.ID == v2.ID {
		t.Fatalf("v1 and v2 share digests: %+v %+v", v1, v2)
	}
	for _, img := range []Image{v1, v2, never, crash} {
		got, err := k.cli.ImageInspect(t.Context(), img.Ref)
		if err != nil {
			t.Fatalf("inspect image %s: %v", img.Ref, err)
		}
		if got.ID != img.ID {
			t.Errorf("image %s: docker ID %s, pushed config digest %s", img.Ref, got.ID, img.ID)
		}
		if !slices.ContainsFunc(got.RepoDigests, func(d string) bool { return strings.HasSuffix(d, "@"+img.Digest) }) {
			t.Errorf("image %s: repo digests %v lack %s", img.Ref, got.RepoDigests, img.Digest)
		}
	}

	// Start the failure cases first; their health checks run while the
	// happy path is exercised.
	neverID := k.create(t, ContainerOpts{Name: k.prefix + "-never", Image: never.Ref, Service: "never"})
	crashID := k.create(t, ContainerOpts{Name: k.prefix + "-crash", Image: crash.Ref, Service: "crash"})
	hostID := k.create(t, ContainerOpts{Name: k.prefix + "-host", Image: v1.Ref, Service: "vms",
		Env: []string{"DEMO_MODE=workload-host"}})

	netName, subnet := k.network(t)
	octets := subnet.Addr().As4()
	ip := netip.AddrFrom4([4]byte{octets[0], octets[1], octets[2], 10})
	vol := k.prefix + "-data"
	webOpts := ContainerOpts{
		Name:          k.prefix + "-web",
		Image:         v1.Ref,
		Node:          "node-a",
		Service:       "web",
		Volumes:       map[string]string{vol: "/data"},
		Network:       netName,
		Aliases:       []string{"web"},
		IPv4:          ip.String(),
		Ports:         map[string]string{"8080/tcp": ""},
		RestartPolicy: "unless-stopped",
	}

	var webID string
	t.Run("healthy v1 on user network", func(t *testing.T) {
		webID = k.create(t, webOpts)
		c := waitHealth(t, k.cli, webID, container.Healthy)
		if c.Image != v1.ID {
			t.Errorf("container image %s, want %s", c.Image, v1.ID)
		}
		if c.Config.Labels[LabelNode] != "node-a" || c.Config.Labels[LabelService] != "web" || c.Config.Labels[LabelTest] != k.runID {
			t.Errorf("labels %v", c.Config.Labels)
		}
		if c.Config.Labels["org.opencontainers.image.version"] != "v1" {
			t.Errorf("image label not inherited: %v", c.Config.Labels)
		}
		ep := c.NetworkSettings.Networks[netName]
		if ep == nil || ep.IPAddress != ip || !slices.Contains(ep.Aliases, "web") {
			t.Fatalf("endpoint on %s: %+v", netName, ep)
		}
		if c.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
			t.Errorf("restart policy %q", c.HostConfig.RestartPolicy.Name)
		}
		got := getRoot(t, ip)
		if got.Version != "v1" || got.Mode != "healthy" || got.Hostname != webID[:12] {
			t.Errorf("GET / = %+v", got)
		}
		sql, err := readFile(t.Context(), k.cli, webID, "/migrations/0001_init.up.sql")
		if err != nil || sql != migration {
			t.Errorf("migration file = %q, %v", sql, err)
		}
	})
	if webID == "" {
		t.FailNow()
	}

	t.Run("volume data survives upgrade to v2", func(t *testing.T) {
		base := "http://" + ip.String() + ":8080/data"
		httpDo(t, http.MethodPost, base, "order 42\n")
		if got := httpDo(t, http.MethodGet, base, ""); got != "started v1\norder 42\n" {
			t.Fatalf("GET /data = %q", got)
		}

		// Replace v1 the way an updater would: rename, stop, remove, create.
		if _, err := k.cli.ContainerRename(t.Context(), webID, client.ContainerRenameOptions{NewName: webOpts.Name + "-old"}); err != nil {
			t.Fatalf("rename: %v", err)
		}
		stopTimeout := 5
		if _, err := k.cli.ContainerStop(t.Context(), webID, client.ContainerStopOptions{Timeout: &stopTimeout}); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if c := k.inspect(t, webID); c.State.ExitCode != 0 || c.Name != "/"+webOpts.Name+"-old" {
			t.Errorf("after graceful stop: exit code %d (want 0, SIGTERM handled), name %s", c.State.ExitCode, c.Name)
		}
		if _, err := k.cli.ContainerRemove(t.Context(), webID, client.ContainerRemoveOptions{}); err != nil {
			t.Fatalf("remove: %v", err)
		}

		opts := webOpts
		opts.Image = v2.Ref
		id := k.create(t, opts)
		waitHealth(t, k.cli, id, container.Healthy)
		if got := getRoot(t, ip); got.Version != "v2" {
			t.Errorf("GET / version %q, want v2", got.Version)
		}
		if got := httpDo(t, http.MethodGet, base, ""); got != "started v1\norder 42\nstarted v2\n" {
			t.Errorf("GET /data after upgrade = %q", got)
		}
	})

	t.Run("never-healthy becomes unhealthy", func(t *testing.T) {
		c := waitHealth(t, k.cli, neverID, container.Unhealthy)
		if !c.State.Running {
			t.Errorf("unhealthy container stopped: %+v", c.State)
		}
	})

	t.Run("crash exits 1", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		c, err := WaitExit(ctx, k.cli, crashID)
		if err != nil {
			t.Fatalf("wait exit: %v", err)
		}
		if c.State.ExitCode != 1 {
			t.Errorf("exit code %d, want 1", c.State.ExitCode)
		}
		if _, err := WaitHealth(ctx, k.cli, crashID, container.Healthy); !errors.Is(err, ErrContainerExited) {
			t.Errorf("WaitHealth on exited container: %v, want ErrContainerExited", err)
		}
	})

	t.Run("workload-host runs three vms", func(t *testing.T) {
		waitHealth(t, k.cli, hostID, container.Healthy)
		pids, err := readFile(t.Context(), k.cli, hostID, "/data/vms.pids")
		if err != nil {
			t.Fatalf("read vms.pids: %v", err)
		}
		if n := len(strings.Fields(pids)); n != 3 {
			t.Errorf("vms.pids lists %d pids: %q", n, pids)
		}
		top, err := k.cli.ContainerTop(t.Context(), hostID, client.ContainerTopOptions{})
		if err != nil {
			t.Fatalf("top: %v", err)
		}
		if len(top.Processes) != 4 {
			t.Errorf("%d processes in workload host, want 4: %v", len(top.Processes), top.Processes)
		}
	})
	t.Logf("whole test took %s", time.Since(start).Round(time.Millisecond))
}

// TestCleanupRemovesTheRunsImages: images a run pulled carry its label in
// their config, and Cleanup removes them with its containers, so a test
// run leaves no image behind.
func TestCleanupRemovesTheRunsImages(t *testing.T) {
	k := newKit(t)
	bin := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := k.reg.Push(t.Context(), bin, ImageSpec{Repo: "cleanup/app", Tag: "v1", Labels: k.labels, Env: []string{"CUTOVER_TEST_RUN=" + k.runID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := PullImage(t.Context(), k.cli, img.Ref); err != nil {
		t.Fatal(err)
	}
	filter := client.ImageListOptions{Filters: client.Filters{}.Add("label", LabelTest+"="+k.runID)}
	if got, err := k.cli.ImageList(t.Context(), filter); err != nil || len(got.Items) != 1 {
		t.Fatalf("images labelled with the run before Cleanup: %d (%v), want 1", len(got.Items), err)
	}
	if err := Cleanup(t.Context(), k.cli, LabelTest+"="+k.runID); err != nil {
		t.Fatal(err)
	}
	if got, err := k.cli.ImageList(t.Context(), filter); err != nil || len(got.Items) != 0 {
		t.Errorf("images labelled with the run after Cleanup: %d (%v), want none", len(got.Items), err)
	}
}
