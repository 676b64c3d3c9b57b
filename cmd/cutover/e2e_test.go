package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/services/planner"
)

var eventually = natstest.Eventually

// collect gathers the payloads a raw client receives.
type collected struct {
	mu      sync.Mutex
	msgs    []map[string]any
	notJSON []string
}

func (c *collected) run(raw *rawNATS, t *testing.T) {
	go func() {
		for m := range raw.msgs {
			var v map[string]any
			c.mu.Lock()
			if err := json.Unmarshal([]byte(m), &v); err != nil {
				c.notJSON = append(c.notJSON, m)
				c.mu.Unlock()
				continue
			}
			c.msgs = append(c.msgs, v)
			c.mu.Unlock()
		}
	}()
}

func (c *collected) ofType(typ string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, m := range c.msgs {
		if m["type"] == typ {
			out = append(out, m)
		}
	}
	return out
}

func uniqueIDs(ms []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range ms {
		out[fmt.Sprint(m["id"])] = m
	}
	return out
}

// TestMalformedMessagesAreRejectedAndTheStackKeepsRunning runs the whole
// stack in-process and feeds it garbage from a client that is not cutover's.
func TestMalformedMessagesAreRejectedAndTheStackKeepsRunning(t *testing.T) {
	s, err := stack.Start(t.Context(), stack.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	raw := dialRaw(t, s.ClientURL())
	var got collected
	got.run(raw, t)
	raw.sub(events.SubjectAll)

	valid, _ := os.ReadFile("testdata/request.json")
	mutate := func(f func(map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(valid, &m)
		f(m)
		out, _ := json.Marshal(m)
		return string(out)
	}
	bad := []struct{ field, payload string }{
		{"", "this is not json"},
		{"type", mutate(func(m map[string]any) { delete(m, "type") })},
		{"type", mutate(func(m map[string]any) { m["type"] = "dev.cutover.nonsense" })},
		{"data.release", mutate(func(m map[string]any) { delete(m["data"].(map[string]any), "release") })},
	}
	for _, b := range bad {
		raw.pub(events.SubjectUpgradeRequested, b.payload)
	}
	eventually(t, 15*time.Second, "4 rejections", func() bool { return len(uniqueIDs(got.ofType(events.TypeEventRejected))) == 4 })
	fields := map[string]int{}
	for _, r := range uniqueIDs(got.ofType(events.TypeEventRejected)) {
		fields[fmt.Sprint(r["data"].(map[string]any)["field"])]++
	}
	for _, b := range bad {
		f := b.field
		if f == "" {
			f = "<nil>"
		}
		if fields[f] == 0 {
			t.Errorf("no rejection names field %q; got %v", b.field, fields)
		}
	}

	// Every service still runs: a valid request is planned (and refused,
	// since no node runs e2e-web), and the auditor stores it.
	raw.pub(events.SubjectUpgradeRequested, strings.Replace(string(valid), "IMAGE", "reg/x:2", 1))
	eventually(t, 15*time.Second, "the planner's answer", func() bool { return len(got.ofType(events.TypeUpgradeFailed)) == 1 })
	f := got.ofType(events.TypeUpgradeFailed)[0]
	if !strings.Contains(fmt.Sprint(f["data"]), "dev.cutover.service=e2e-web") {
		t.Errorf("refusal does not name the missing service: %v", f["data"])
	}
	eventually(t, 10*time.Second, "the auditor to store the request", func() bool {
		recs, err := s.Store().Events(t.Context(), "e2e-raw-client-request-0001")
		return err == nil && len(recs) >= 2
	})
	// Nothing is redelivered forever: the rejected messages are acked away.
	for _, durable := range []string{"planner", "auditor"} {
		natstest.Settled(t, s.JetStream(), durable, 10*time.Second)
	}
}

// fleet is a set of v1 containers, one per node, on the real engine, with
// v1 and v2 images in an in-process registry. Everything is removed at the
// end of the test.
type fleet struct {
	cli   *client.Client
	imgs  map[string]testkit.Image
	nodes []string
	names map[string]string // node -> container name
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	ctx := t.Context()
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		t.Skipf("docker engine not reachable: %v", err)
	}
	run := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = testkit.Cleanup(cctx, cli, "dev.cutover.test="+run)
		cli.Close()
	})
	app, err := testkit.BuildDemoApp(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := testkit.StartRegistry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
	f := &fleet{cli: cli, imgs: map[string]testkit.Image{}, names: map[string]string{}}
	for _, v := range []string{"v1", "v2"} {
		if f.imgs[v], err = reg.Push(ctx, app, testkit.ImageSpec{Repo: run + "/web", Tag: v, Version: v, Healthcheck: true, Labels: map[string]string{"dev.cutover.test": run}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testkit.PullImage(ctx, cli, f.imgs["v1"].Ref); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		node, name := fmt.Sprintf("%s-n%d", run, i), fmt.Sprintf("%s-web-%d", run, i)
		if _, err := testkit.CreateContainer(ctx, cli, testkit.ContainerOpts{
			Name: name, Image: f.imgs["v1"].Ref, Node: node, Service: "e2e-web",
			Labels: map[string]string{"dev.cutover.test": run}, Volumes: map[string]string{name + "-data": "/data"},
		}); err != nil {
			t.Fatal(err)
		}
		f.nodes = append(f.nodes, node)
		f.names[node] = name
	}
	return f
}

// assertAllRunV2 checks on the engine that every container runs v2.
func (f *fleet) assertAllRunV2(t *testing.T) {
	t.Helper()
	for _, n := range f.nodes {
		insp, err := f.cli.ContainerInspect(t.Context(), f.names[n], client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if insp.Container.Image != f.imgs["v2"].ID || !insp.Container.State.Running {
			t.Errorf("%s runs image %s (running=%v), want v2 %s", f.names[n], insp.Container.Image, insp.Container.State.Running, f.imgs["v2"].ID)
		}
	}
}

// waitInventories waits until every node-updater has published its inventory.
func waitInventories(t *testing.T, js jetstream.JetStream, nodes []string) {
	t.Helper()
	eventually(t, 30*time.Second, "node inventories", func() bool {
		kv, err := js.KeyValue(t.Context(), events.BucketNodes)
		if err != nil {
			return false // not created yet
		}
		for _, n := range nodes {
			if _, err := kv.Get(t.Context(), n); err != nil {
				return false
			}
		}
		return true
	})
}

func buildCutover(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cutover")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build cutover: %v\n%s", err, out)
	}
	return bin
}

// freeAddr is a loopback address whose port is free right now.
var freeAddr = natstest.FreeAddr

// process is a cutover program running for a test; its output is shown when the test fails.
type process struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

func startDev(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	return startProcess(t, bin, append([]string{"dev"}, args...)...)
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	return startProcessEnv(t, nil, bin, args...)
}

// startProcessEnv is startProcess with an environment (nil: this process's).
func startProcessEnv(t *testing.T, env []string, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), log: &bytes.Buffer{}}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(p.cmd.Path), p.log)
		}
	})
	return p
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGTERM\n%s", p.cmd.Path, err, p.log)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not stop within 90s of SIGTERM\n%s", p.cmd.Path, p.log)
	}
}

// TestDevFinishesAnUpgradeAfterSIGTERM stops `cutover dev` with SIGTERM in
// the middle of a real upgrade on Docker, starts it again on the same data
// dir, and checks that the upgrade finishes with every container replaced
// exactly once. The request comes from a raw-protocol client with a
// hand-written CloudEvent, and every message that client sees on cutover.>
// must be a CloudEvents 1.0 JSON event.
func TestDevFinishesAnUpgradeAfterSIGTERM(t *testing.T) {
	ctx := t.Context()
	f := newFleet(t, 3)
	imgs, nodes, names := f.imgs, f.nodes, f.names
	bin := buildCutover(t)
	data, addr := t.TempDir(), freeAddr(t)
	args := []string{"--data", data, "--nats-listen", addr, "--nodes", strings.Join(nodes, ",")}
	url := "nats://" + addr
	first := startDev(t, bin, args...)
	// dev requires the credentials it generates in its data directory; the
	// operator's identity (cli) may request upgrades and read every event.
	js := connectAs(t, url, data, natsauth.RoleCLI)
	waitInventories(t, js, nodes)

	raw := dialRawAs(t, url, natsauth.SeedFile(filepath.Join(data, stack.CredsDir), natsauth.RoleCLI))
	var seen collected
	seen.run(raw, t)
	raw.sub(events.SubjectAll)
	req, _ := os.ReadFile("testdata/request.json")
	raw.pub(events.SubjectUpgradeRequested, strings.Replace(string(req), "IMAGE", imgs["v2"].Ref, 1))
	const id = "e2e-raw-client-request-0001"
	eventually(t, 60*time.Second, "the first container replaced", func() bool { return len(seen.ofType(events.TypeContainerReplaced)) >= 1 })
	first.stop(t)

	u, err := planner.LoadUpgrade(ctx, js, id)
	if err == nil && u.Phase == planner.PhaseCompleted {
		t.Fatal("the upgrade completed before SIGTERM; the test did not stop it midway")
	}
	startDev(t, bin, args...)
	js = connectAs(t, url, data, natsauth.RoleCLI)
	eventually(t, 120*time.Second, "the upgrade to complete after restart", func() bool {
		u, err = planner.LoadUpgrade(ctx, js, id)
		return err == nil && u.Final()
	})
	if u.Phase != planner.PhaseCompleted {
		t.Fatalf("upgrade ended %s: %s", u.Phase, u.Reason)
	}

	// From the stream: each container replaced once, each node commanded once,
	// and every message a valid CloudEvent.
	replaced, commands := map[string]int{}, map[string]int{}
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}})
	if err != nil {
		t.Fatal(err)
	}
	info, _ := js.Stream(ctx, events.StreamName)
	st, _ := info.Info(ctx)
	for range st.State.Msgs {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		e, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil {
			t.Fatalf("stream message %q is not a valid cutover CloudEvent: %v", msg.Data(), err)
		}
		switch e.Type() {
		case events.TypeContainerReplaced:
			d, _ := events.DataAs[events.ContainerReplaced](e)
			if d.Result == events.ResultReplaced {
				replaced[d.Container]++
			}
		case events.TypeNodeUpdateRequested:
			commands[events.NodeID(e)]++
		}
	}
	for _, n := range nodes {
		if replaced[names[n]] != 1 || commands[n] != 1 {
			t.Errorf("%s: replaced %d times, commanded %d times; want 1 and 1", names[n], replaced[names[n]], commands[n])
		}
	}
	f.assertAllRunV2(t)
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if len(seen.notJSON) > 0 {
		t.Errorf("messages on cutover.> that are not JSON: %q", seen.notJSON)
	}
	for _, m := range seen.msgs {
		if m["specversion"] != "1.0" || m["id"] == nil || m["type"] == nil || m["source"] == nil {
			t.Errorf("not a CloudEvents 1.0 event: %v", m)
		}
	}
}

// TestServicesRunSeparately runs each service as its own process against an
// external NATS server, as a distributed deployment does, and drives a real
// upgrade with `cutover apply --watch`. The server requires TLS with client
// certificates and the authorization `cutover nats-config` generates; each
// process gets its own identity through the environment, as the systemd
// units give it. Afterwards no log line, output or process argument of the
// run holds a seed.
func TestServicesRunSeparately(t *testing.T) {
	f := newFleet(t, 2)
	srv := natstest.StartSecure(t, natsauth.Fleet{Nodes: f.nodes})
	url := srv.ClientURL()
	// env is an identity's connection, as environment variables.
	env := func(identity string) []string {
		c := srv.Client(identity)
		return append(os.Environ(), "CUTOVER_NATS_NKEY="+c.NKeyFile, "CUTOVER_NATS_CA="+c.CAFile, "CUTOVER_NATS_CERT="+c.CertFile, "CUTOVER_NATS_KEY="+c.KeyFile)
	}

	bins := t.TempDir()
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bins+"/", ".",
		"github.com/cutover-dev/cutover/services/planner/cmd/planner",
		"github.com/cutover-dev/cutover/services/migrator/cmd/migrator",
		"github.com/cutover-dev/cutover/services/auditor/cmd/auditor",
		"github.com/cutover-dev/cutover/services/node-updater/cmd/node-updater").CombinedOutput()
	if err != nil {
		t.Fatalf("build the services: %v\n%s", err, out)
	}
	apiAddr := freeAddr(t)
	procs := []*process{
		startProcessEnv(t, env("planner"), bins+"/planner", "--nats", url),
		startProcessEnv(t, env("migrator"), bins+"/migrator", "--nats", url, "--allow-any-database"),
		startProcessEnv(t, env("auditor"), bins+"/auditor", "--nats", url, "--store", filepath.Join(t.TempDir(), "audit.db"), "--http", apiAddr),
	}
	for _, n := range f.nodes {
		procs = append(procs, startProcessEnv(t, env("node-updater-"+n), bins+"/node-updater", "--nats", url, "--node", n))
	}
	nc, js, err := events.Connect(t.Context(), srv.Client("cli"), "cutover-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	waitInventories(t, js, f.nodes)

	release := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(release, []byte("release: e2e-v2\nservices:\n  e2e-web:\n    image: "+f.imgs["v2"].Ref+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	apply := exec.CommandContext(t.Context(), bins+"/cutover", "apply", "-f", release, "--watch", "--nats", url)
	apply.Env = env("cli")
	outb, err := apply.CombinedOutput()
	if err != nil {
		t.Fatalf("cutover apply --watch: %v\n%s", err, outb)
	}
	lines := strings.Split(strings.TrimSpace(string(outb)), "\n")
	id := lines[0]
	if !strings.Contains(lines[len(lines)-1], "upgrade.completed") {
		t.Errorf("apply --watch did not end on upgrade.completed:\n%s", outb)
	}
	f.assertAllRunV2(t)

	statusCmd := exec.CommandContext(t.Context(), bins+"/cutover", "status", id, "-o", "json", "--nats", url)
	statusCmd.Env = env("cli")
	status, err := statusCmd.Output()
	if err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("cutover status %s: %v\n%s", id, err, ee.Stderr)
	}
	var u planner.Upgrade
	if err := json.Unmarshal(status, &u); err != nil || u.Phase != planner.PhaseCompleted {
		t.Errorf("status = %s (%v), want phase completed", status, err)
	}
	// The auditor, a separate process, recorded the whole upgrade.
	eventually(t, 15*time.Second, "the auditor's record of the upgrade", func() bool {
		body, err := testkit.HTTP(t.Context(), "GET", "http://"+apiAddr+"/api/upgrades/"+id+"/events", "")
		return err == nil && strings.Contains(body, events.TypeUpgradeCompleted) && strings.Contains(body, events.TypeUpgradeRequested)
	})
	for _, p := range procs {
		p.stop(t)
	}
	// No seed in any log, output or argument of the run.
	seeds, _ := filepath.Glob(filepath.Join(srv.Dir, "creds", "*.nk"))
	var all strings.Builder
	all.Write(outb)
	all.Write(status)
	for _, p := range procs {
		all.WriteString(p.log.String())
		all.WriteString(strings.Join(p.cmd.Args, " "))
		if strings.Contains(p.log.String(), "NATS refused") {
			t.Errorf("%s was refused something it needs:\n%s", filepath.Base(p.cmd.Path), p.log)
		}
	}
	for _, sf := range seeds {
		b, err := os.ReadFile(sf)
		if err != nil {
			t.Fatal(err)
		}
		if seed := strings.TrimSpace(string(b)); strings.Contains(all.String(), seed) {
			t.Errorf("the seed of %s appears in a log, output or argument", filepath.Base(sf))
		}
	}
}
