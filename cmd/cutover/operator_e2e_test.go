package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/fleetinfo"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// binResult is what one run of the built binary printed and returned.
type binResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runBin runs the built cutover binary and waits for it (at most a minute).
func runBin(t *testing.T, bin string, args ...string) binResult {
	t.Helper()
	return runBinIn(t, "", bin, args...)
}

// runBinIn is runBin in directory dir.
func runBinIn(t *testing.T, dir, bin string, args ...string) binResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := binResult{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run cutover %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// connectAs connects to the dev stack's NATS as one of the identities it
// generated in its data directory.
func connectAs(t *testing.T, url, data, identity string) jetstream.JetStream {
	t.Helper()
	var js jetstream.JetStream
	eventually(t, 30*time.Second, "NATS at "+url+" as "+identity, func() bool {
		nc, j, err := events.Connect(t.Context(), events.ClientConfig{URL: url, NKeyFile: natsauth.SeedFile(filepath.Join(data, stack.CredsDir), identity)}, "cutover-"+identity)
		if err != nil {
			return false
		}
		t.Cleanup(nc.Close)
		js = j
		return true
	})
	return js
}

// simFleet runs simulated node-updaters (the real node-updater code on the
// sim runtime), each on its own identity, against the dev stack's NATS:
// web-nodeN at v1 on node1..n. Each node's first failFirstPulls pulls are
// refused, as by a registry down for a moment.
func simFleet(t *testing.T, url, data string, n int, failures sim.Failures, failFirstPulls int) *sim.Fleet {
	t.Helper()
	var names []string
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("node%d", i))
	}
	return simFleetOf(t, url, data, names, sim.FleetConfig{Seed: 1, Failures: failures, FailFirstPulls: failFirstPulls, PullBackoff: 20 * time.Millisecond})
}

// simFleetOf is simFleet on the nodes names, with cfg's settings (its
// Nodes and AgentVersion are set here).
func simFleetOf(t *testing.T, url, data string, names []string, cfg sim.FleetConfig) *sim.Fleet {
	t.Helper()
	var jss []jetstream.JetStream
	for _, name := range names {
		cfg.Nodes = append(cfg.Nodes, sim.NodeSpec{Name: name, Containers: []sim.ContainerSpec{{Name: "web-" + name, Service: "web", Image: "web:v1"}}})
		jss = append(jss, connectAs(t, url, data, "node-updater-"+name))
	}
	cfg.AgentVersion = "e2e"
	f, err := sim.StartFleet(t.Context(), jss, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	waitInventories(t, connectAs(t, url, data, cli.Identity), names)
	return f
}

// TestOperatorCommandsAgainstTheDevStack drives the built binary against
// `cutover dev` with a simulated fleet of three nodes: apply with a canary
// pause, list, status, promote, watch, history, a refused control, an
// unknown id, and Ctrl-C on watch.
func TestOperatorCommandsAgainstTheDevStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the dev stack")
	}
	bin := buildCutover(t)
	addr, data := freeAddr(t), t.TempDir()
	url := "nats://" + addr
	// No Docker for dev: the nodes are simulated, in this process, on the
	// identities dev generates for the nodes it is told about.
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("CUTOVER_DATA", data) // the CLI finds its identity there
	httpAddr := freeAddr(t)
	dev := startDev(t, bin, "--nodes", "node1,node2,node3", "--nats-listen", addr, "--data", data, "--http", httpAddr)
	js := connectAs(t, url, data, cli.Identity)
	// The registry refuses each node's first two pulls: the node-updaters
	// try again and every wave completes.
	fleet := simFleet(t, url, data, 3, sim.Failures{}, 2)
	nats := []string{"--nats", url}
	cut := func(args ...string) binResult { t.Helper(); return runBin(t, bin, append(args, nats...)...) }

	release := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(release, []byte("release: canary-v2\npause_after_canary: true\nservices:\n  web:\n    image: web:v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The live fleet runs v1: the plan changes three containers (exit 2).
	r := cut("plan", "-f", release, "--detailed-exitcode")
	if r.code != 2 || !strings.Contains(r.stdout, "web:v1 → web:v2: image differs") {
		t.Errorf("plan --detailed-exitcode against v1: %+v, want exit 2 and the changes", r)
	}
	r = cut("nodes", "-o", "json")
	var nodes []fleetinfo.NodeRow
	if err := json.Unmarshal([]byte(r.stdout), &nodes); r.code != 0 || err != nil || len(nodes) != 3 || !nodes[0].Alive || nodes[0].AgentVersion != "e2e" || len(nodes[0].Images) != 1 {
		t.Errorf("nodes -o json = %+v (%v), want 3 alive node-updaters", r, err)
	}

	r = cut("apply", "-f", release)
	if r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)

	// The canary pauses: status exits 3 and names promote.
	eventually(t, 20*time.Second, "the canary pause", func() bool {
		return cut("status", id).code == 3
	})
	// Shell completion offers the planner's upgrades.
	if r := runBin(t, bin, "__complete", "promote", "--nats", url, id[:8]); !strings.Contains(r.stdout, id+"\tcanary-v2, paused") {
		t.Errorf("completion of an upgrade id: %+v", r)
	}
	if r := cut("status", "canary-v2"); !strings.Contains(r.stdout, "waiting for cutover promote "+id) {
		t.Errorf("status by release name:\n%s", r.stdout)
	}
	r = cut("list", "-o", "json")
	var rows []upgrades.Row
	if err := json.Unmarshal([]byte(r.stdout), &rows); r.code != 0 || err != nil || len(rows) != 1 || rows[0].ID != id || rows[0].Phase != "paused" {
		t.Fatalf("list -o json = %+v (%v), want the paused upgrade", r, err)
	}
	if r := cut("list", "--state", "completed"); r.code != 0 || !strings.Contains(r.stdout, "no upgrades") {
		t.Errorf("list --state completed: %+v", r)
	}

	// The paused upgrade holds its scope's lock, which cannot be released.
	r = cut("locks", "-o", "json")
	var locks []fleetinfo.LockRow
	if err := json.Unmarshal([]byte(r.stdout), &locks); err != nil || len(locks) != 1 || locks[0].Upgrade != id || !locks[0].Live || locks[0].Scope != "default" {
		t.Errorf("locks -o json = %+v (%v), want the paused upgrade's live lock", r, err)
	}
	if r := cut("locks", "--release", "default", "--force"); r.code != 1 || !strings.Contains(r.stderr, "is live") {
		t.Errorf("release of a live lock: %+v, want refused", r)
	}

	// promote by a prefix of the id; the planner answers.
	r = cut("promote", id[:13])
	if r.code != 0 || !strings.Contains(r.stdout, "promoted: wave 1 starts") {
		t.Fatalf("promote: %+v", r)
	}
	r = cut("watch", id)
	if r.code != 0 || !strings.Contains(r.stdout, "upgrade.completed") || !strings.Contains(r.stdout, "promote accepted") {
		t.Errorf("watch after promote: %+v", r)
	}

	for _, n := range fleet.Nodes() {
		if st := fleet.Runtime(n).Stats(); st.PullFailures != 2 || fleet.Runtime(n).Images()["web-"+n] != "web:v2" {
			t.Errorf("%s: %d refused pulls, runs %s; want 2 refused, then web:v2", n, st.PullFailures, fleet.Runtime(n).Images()["web-"+n])
		}
	}
	// Nothing changes any more (exit 0), and no lock is held.
	if r := cut("plan", "-f", release, "--detailed-exitcode"); r.code != 0 {
		t.Errorf("plan --detailed-exitcode after the upgrade: %+v, want exit 0", r)
	}
	if r := cut("locks"); r.code != 0 || !strings.Contains(r.stdout, "no locks") {
		t.Errorf("locks after the upgrade: %+v", r)
	}
	// A lock left by an upgrade the planner does not know is stale: released.
	kv, err := js.KeyValue(t.Context(), events.BucketLocks)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "upgrade.other", []byte("gone-upgrade")); err != nil {
		t.Fatal(err)
	}
	if r := cut("locks"); !strings.Contains(r.stdout, "stale: its upgrade is unknown") {
		t.Errorf("locks with a stale lock: %+v", r)
	}
	if r := cut("locks", "--release", "other", "--force"); r.code != 0 || !strings.Contains(r.stdout, "released the lock of scope other") {
		t.Errorf("release of a stale lock: %+v", r)
	}

	// A control on a finished upgrade is refused with the reason.
	r = cut("abort", id)
	if r.code != 1 || !strings.Contains(r.stderr, "refused: it already finished: completed") {
		t.Errorf("abort of a completed upgrade: %+v", r)
	}

	r = cut("history", "canary-v2", "-o", "json")
	var evs []events.Event
	if err := json.Unmarshal([]byte(r.stdout), &evs); r.code != 0 || err != nil {
		t.Fatalf("history -o json: %+v (%v)", r, err)
	}
	types := map[string]int{}
	for _, e := range evs {
		types[e.Type()]++
	}
	if types[events.TypeUpgradeRequested] != 1 || types[events.TypeUpgradeCompleted] != 1 || types[events.TypeUpgradeControlAnswered] != 2 {
		t.Errorf("history holds %v, want the request, the completion and two answers", types)
	}

	// The auditor's history holds the same timeline, found by release name.
	eventually(t, 15*time.Second, "the auditor's history", func() bool {
		r := runBin(t, bin, "history", "canary-v2", "-o", "json", "--auditor", "http://"+httpAddr)
		var aev []events.Event
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &aev) == nil && len(aev) >= len(evs)-2 && aev[0].Type() == events.TypeUpgradeRequested
	})

	// watch -o json: one CloudEvent per line.
	r = cut("watch", id, "-o", "json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, l := range lines {
		var e events.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.ID() == "" {
			t.Fatalf("watch -o json line %q: %v", l, err)
		}
	}

	// An unknown id fails at once, not after a timeout.
	r = cut("watch", "no-such-upgrade")
	if r.code == 0 || r.took > 10*time.Second || !strings.Contains(r.stderr, "cutover list") {
		t.Errorf("watch of an unknown id: %+v", r)
	}

	// Ctrl-C on watch: exit 130, nothing on stderr. The watch has shown
	// an event first, so the interrupt reaches a running command.
	w := exec.Command(bin, append([]string{"watch"}, nats...)...)
	var werr bytes.Buffer
	w.Stderr = &werr
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "upgrade.requested") {
				close(seen)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	eventually(t, 20*time.Second, "watch to show a new upgrade", func() bool {
		_ = cut("apply", "-f", release)
		select {
		case <-seen:
			return true
		case <-time.After(2 * time.Second):
			return false
		}
	})
	_ = w.Process.Signal(syscall.SIGINT)
	err = w.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 || werr.Len() != 0 {
		t.Errorf("watch after Ctrl-C: %v, stderr %q; want exit 130 and nothing on stderr", err, werr.String())
	}
	dev.stop(t)
}

// TestOperatorLongNodesPullRetriesAndTheAuditorsList runs the built binary
// against cutover dev serving its auditor over HTTPS with basic auth, on
// nodes with Kolla-style names whose registry refuses the first two pulls:
//   - watch lines stay aligned however long the node names, none cut;
//   - each retried pull is one dev.cutover.container.pull.retrying event,
//     in watch and in the auditor's history, without the registry password;
//   - list --auditor still lists an upgrade the planner's bucket lost.
func TestOperatorLongNodesPullRetriesAndTheAuditorsList(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the dev stack")
	}
	const registryPassword = "r3gistry-s3cret"
	bin := buildCutover(t)
	addr, data, certs := freeAddr(t), t.TempDir(), t.TempDir()
	url := "nats://" + addr
	ca, _, _, err := natstest.WriteCerts(certs)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(certs, "http-password")
	if err := os.WriteFile(pwFile, []byte("audit-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("CUTOVER_DATA", data)
	nodes := []string{"compute-eu-west-1-rack12-node031", "control-eu-west-1-rack01-node002"}
	httpAddr := freeAddr(t)
	dev := startDev(t, bin, "--nodes", strings.Join(nodes, ","), "--nats-listen", addr, "--data", data, "--http", httpAddr,
		"--http-tls-cert", filepath.Join(certs, "server.pem"), "--http-tls-key", filepath.Join(certs, "server-key.pem"),
		"--http-user", "ops", "--http-password-file", pwFile)
	fleet := simFleetOf(t, url, data, nodes, sim.FleetConfig{Seed: 1, FailFirstPulls: 2, PullBackoff: 20 * time.Millisecond,
		Registry: "https://cutover:" + registryPassword + "@registry.example"})
	cut := func(args ...string) binResult { t.Helper(); return runBin(t, bin, append(args, "--nats", url)...) }
	auditor := []string{"--auditor", "https://" + httpAddr, "--auditor-ca", ca, "--auditor-user", "ops", "--auditor-password-file", pwFile}

	release := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(release, []byte("release: long-v2\nservices:\n  web:\n    image: web:v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cut("apply", "-f", release)
	if r.code != 0 {
		t.Fatalf("apply: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)
	r = cut("watch", id)
	if r.code != 0 {
		t.Fatalf("watch: %+v", r)
	}
	t.Logf("$ cutover watch %s\n%s", id, r.stdout)
	for _, n := range fleet.Nodes() {
		if img := fleet.Runtime(n).Images()["web-"+n]; img != "web:v2" {
			t.Errorf("%s runs %s, want web:v2", n, img)
		}
	}

	// Every line's detail starts in the same column, after a full name.
	col := -1
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		if !slices.Contains(append([]string{"planner", "cli"}, nodes...), f[2]) {
			t.Errorf("watch shows %q where a node or service goes (cut?): %s", f[2], l)
		}
		at := strings.Index(l, " "+f[2]+" ") + 1 + len(f[2])
		at += len(l[at:]) - len(strings.TrimLeft(l[at:], " "))
		if col == -1 {
			col = at
		}
		if at != col {
			t.Errorf("watch lines are not aligned: this detail starts at column %d, the first at %d:\n%s", at, col, r.stdout)
			break
		}
	}
	// Two refused pulls per node: two retries each, in plain words.
	for _, n := range nodes {
		want := 0
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.Contains(l, "container.pull.retrying") && strings.Contains(l, n) && strings.Contains(l, "pulling web:v2 failed (attempt") {
				want++
			}
		}
		if want != 2 {
			t.Errorf("watch shows %d pull retries on %s, want 2:\n%s", want, n, r.stdout)
		}
	}
	if strings.Contains(r.stdout, registryPassword) {
		t.Errorf("watch shows the registry password:\n%s", r.stdout)
	}

	// The auditor stores the retries like any event: over HTTPS, with basic auth.
	eventually(t, 20*time.Second, "the auditor to hold the upgrade's retries", func() bool {
		r := runBin(t, bin, append([]string{"history", id, "-o", "json"}, auditor...)...)
		var evs []events.Event
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &evs) != nil {
			return false
		}
		retries := map[string][]int{}
		completed := false
		for _, e := range evs {
			switch e.Type() {
			case events.TypeContainerPullRetrying:
				d, err := events.DataAs[events.ContainerPullRetrying](e)
				if err != nil {
					t.Fatal(err)
				}
				retries[events.NodeID(e)] = append(retries[events.NodeID(e)], d.Attempt)
			case events.TypeUpgradeCompleted:
				completed = true
			}
		}
		if strings.Contains(r.stdout, registryPassword) {
			t.Fatalf("the auditor's history holds the registry password:\n%s", r.stdout)
		}
		return completed && slices.Equal(retries[nodes[0]], []int{1, 2}) && slices.Equal(retries[nodes[1]], []int{1, 2}) && len(retries) == 2
	})
	if r := runBin(t, bin, "history", id, "--auditor", "https://"+httpAddr, "--auditor-user", "ops", "--auditor-password-file", pwFile); r.code != 1 || !strings.Contains(r.stderr, "--auditor-ca") {
		t.Errorf("history from an auditor whose CA is not given: %+v, want exit 1 naming --auditor-ca", r)
	}
	if r := runBin(t, bin, "list", "--nats", url, "--auditor", "https://"+httpAddr, "--auditor-ca", ca); r.code != 1 || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "--auditor-user") {
		t.Errorf("list from an auditor without its password: %+v, want exit 1 naming the auth flags", r)
	}

	// The planner's bucket loses the upgrade (purged by hand, or lost with
	// the NATS store): list alone no longer shows it, list --auditor does.
	kv, err := connectAs(t, url, data, "planner").KeyValue(t.Context(), events.BucketUpgrades)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	var rows []upgrades.Row
	if r := cut("list", "-o", "json"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != 0 {
		t.Errorf("list -o json after the purge: %+v, want no upgrade", r)
	}
	r = cut(append([]string{"list", "-o", "json"}, auditor...)...)
	if err := json.Unmarshal([]byte(r.stdout), &rows); r.code != 0 || err != nil || len(rows) != 1 ||
		rows[0].ID != id || rows[0].Release != "long-v2" || rows[0].Phase != "completed" || rows[0].Source != upgrades.SourceAuditor {
		t.Errorf("list --auditor -o json after the purge = %+v (%v), want the completed upgrade from the auditor", r, err)
	}
	r = cut(append([]string{"list", "--state", "completed"}, auditor...)...)
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "from the auditor's history") {
		t.Errorf("list --state completed --auditor: %+v", r)
	}
	t.Logf("$ cutover list --state completed --auditor ...\n%s", r.stdout)
	dev.stop(t)
}
