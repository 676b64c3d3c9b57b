package nodeupdater_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/harness/testkit"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
)

var (
	binOnce sync.Once
	binDir  string // removed by TestMain
	binPath string
	binErr  error
)

// TestMain removes the node-updater binary the crash tests and benchmarks
// built, once every test of the package is done with it.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildUpdater builds cmd/node-updater once per test process.
func buildUpdater(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-nu-bin-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "node-updater")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/node-updater").CombinedOutput()
		if err != nil {
			binErr = errors.New("go build ./cmd/node-updater: " + err.Error() + ": " + string(out))
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// process is a node-updater running as its own OS process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, readable after done
}

// startProcess runs the node-updater binary for node against the env's NATS
// server, with extra flags. crashAfter sets CUTOVER_CRASH_AFTER. The process
// is stopped (or reaped, when it killed itself) at the end of the test.
func (e *env) startProcess(t testing.TB, node, crashAfter string, extra ...string) *process {
	t.Helper()
	cmd := exec.Command(buildUpdater(t), append([]string{"--node", node, "--nats", e.nats.ClientURL(), "--ack-wait", "3s"}, extra...)...)
	cmd.Env = append(os.Environ(), "CUTOVER_CRASH_AFTER="+crashAfter)
	cmd.Stdout = t.Output()
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node-updater: %v", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// awaitKilled waits until the process has killed itself with SIGKILL.
func (p *process) awaitKilled(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("node-updater still running after %s; the crash hook never fired", timeout)
	}
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		t.Fatalf("node-updater exited with %v, want killed by SIGKILL", p.err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("node-updater ended with %v, want killed by SIGKILL", p.err)
	}
}

// copies lists the node's containers answering to name, its old name or its
// start-first trial name: name -> running.
func (e *env) copies(t *testing.T, node, name string) map[string]bool {
	t.Helper()
	list, err := e.cli.ContainerList(t.Context(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", events.LabelNode+"="+node)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range list.Items {
		for _, cn := range c.Names {
			cn = strings.TrimPrefix(cn, "/")
			if cn == name || cn == name+nodeupdater.OldSuffix || cn == name+nodeupdater.NewSuffix {
				out[cn] = c.State == "running"
			}
		}
	}
	return out
}

// TestCrashRecovery kills a real node-updater process with SIGKILL right
// after each step of a replacement, starts it again, and checks that the
// replacement is finished or reverted and redone: exactly one container
// runs under the name at the end, the command completes and is acked.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests build and run the node-updater binary; skipped with -short")
	}
	e := newEnv(t)
	buildUpdater(t)

	cases := []struct {
		strategy, step string
	}{
		{nodeupdater.StrategyStopFirst, nodeupdater.StepPull},
		{nodeupdater.StrategyStopFirst, nodeupdater.StepRename},
		{nodeupdater.StrategyStopFirst, nodeupdater.StepStop},
		{nodeupdater.StrategyStopFirst, nodeupdater.StepCreate},
		{nodeupdater.StrategyStopFirst, nodeupdater.StepStart},
		{nodeupdater.StrategyStartFirst, nodeupdater.StepStart},
		{nodeupdater.StrategyStartFirst, nodeupdater.StepRename},
		{nodeupdater.StrategyStartFirst, nodeupdater.StepSwap},
	}
	for i, tc := range cases {
		t.Run(tc.strategy+" after "+tc.step, func(t *testing.T) {
			t.Parallel()
			node := "crash" + string(rune('a'+i)) + "-" + e.runID
			name := e.prefix + "-crash-" + string(rune('a'+i))
			status := e.watch(t, events.NodeStatusSubject(node))
			old := e.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web", Network: e.net1})

			p := e.startProcess(t, node, tc.step)
			cmd := e.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
				Container: name, Service: "web", Image: e.v2Plain.Ref, Strategy: tc.strategy,
				MinHealthyMs: 500, HealthTimeoutMs: 60000,
			}}})
			p.awaitKilled(t, 90*time.Second)

			// Right after the kill: never two running copies of a
			// stop-first container, never none without the -cutover-old
			// record that recovery acts on.
			at := e.copies(t, node, name)
			running := 0
			for _, r := range at {
				if r {
					running++
				}
			}
			_, hasOld := at[name+nodeupdater.OldSuffix]
			if tc.strategy == nodeupdater.StrategyStopFirst && running > 1 {
				t.Errorf("after the kill: %d running copies %v", running, at)
			}
			if !at[name] && !hasOld {
				t.Errorf("after the kill: nothing runs under %s and no %s record is left: %v", name, nodeupdater.OldSuffix, at)
			}
			t.Logf("engine after the kill at %s: %v", tc.step, at)

			e.startProcess(t, node, "")
			done := dataAs[events.NodeUpdateCompleted](t, status.await(t, events.TypeNodeUpdateCompleted, cmd, 120*time.Second))
			if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced {
				t.Errorf("completed results %+v, want one replaced", done.Results)
			}
			if _, ok := status.find(events.TypeNodeUpdateFailed, cmd); ok {
				t.Error("the command also failed")
			}

			// Recovery said what it did, before the command came back, and
			// the command counts the outage recovery measured.
			if tc.step != nodeupdater.StepPull {
				var recovered int64 = -1
				for _, ev := range status.all() {
					switch ev.Type() {
					case events.TypeContainerReverted:
						if d := dataAs[events.ContainerReverted](t, ev); d.Step == nodeupdater.StepRecovery && !d.InterruptionUnknown {
							recovered = max(recovered, d.InterruptionMs)
						}
					case events.TypeContainerReplaced:
						if d := dataAs[events.ContainerReplaced](t, ev); d.Recovered && !d.InterruptionUnknown {
							recovered = max(recovered, d.InterruptionMs)
						}
					}
				}
				switch {
				case recovered < 0:
					t.Errorf("recovery published no container.reverted (step recovery) or recovered container.replaced: %v", status.types(cmd))
				case len(done.Results) == 1 && done.Results[0].InterruptionMs < recovered:
					t.Errorf("the command reports an interruption of %d ms; recovery measured %d ms before it", done.Results[0].InterruptionMs, recovered)
				}
			}

			end := e.copies(t, node, name)
			if len(end) != 1 || !end[name] {
				t.Errorf("at the end: %v, want only %s running", end, name)
			}
			now := e.inspect(t, name)
			if now.ID == old.ID || now.Image != e.v2Plain.ID || !now.State.Running {
				t.Errorf("at the end %s runs image %s (id %s, old %s), want v2", name, now.Image, now.ID[:12], old.ID[:12])
			}
			if !e.gone(t, old.ID) {
				t.Error("the old container is still there after the commit")
			}

			// Acked once done: nothing pending on the updater's consumer.
			natstest.Settled(t, e.nats.JS, "node-updater-"+node, 30*time.Second)
		})
	}
}

// TestCrashRecoveryKeepsTheCommandsHealthGate kills the node-updater right
// after it started a new container whose image runs but fails the command's
// exec probe. The restarted node-updater must judge that container by the
// command's gate, recorded on the container, and revert it: judged by the
// default gate (running long enough), it would be kept and the old one
// removed. The redelivered command then fails its health gate again.
func TestCrashRecoveryKeepsTheCommandsHealthGate(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests build and run the node-updater binary; skipped with -short")
	}
	e := newEnv(t)
	neverPlain := e.push(testkit.ImageSpec{Tag: "never-plain", Version: "v3", Mode: "never-healthy"})
	buildUpdater(t)

	node := "crashgate-" + e.runID
	name := e.prefix + "-crash-gate"
	status := e.watch(t, events.NodeStatusSubject(node))
	old := e.container(t, testkit.ContainerOpts{Name: name, Node: node, Service: "web", Network: e.net1})

	p := e.startProcess(t, node, nodeupdater.StepStart)
	cmd := e.command(t, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
		Container: name, Service: "web", Image: neverPlain.Ref, MinHealthyMs: 500, HealthTimeoutMs: 6000,
		Probe: &events.Probe{Type: events.ProbeExec, Command: []string{"/app", "health"}, TimeoutMs: 4000},
	}}})
	p.awaitKilled(t, 90*time.Second)
	if at := e.copies(t, node, name); !at[name] {
		t.Fatalf("after the kill at start: %v, want the new %s running", at, name)
	}

	e.startProcess(t, node, "")
	failed := dataAs[events.NodeUpdateFailed](t, status.await(t, events.TypeNodeUpdateFailed, cmd, 120*time.Second))
	if failed.Step != nodeupdater.StepHealth || !strings.Contains(failed.Error, "exited with 1") {
		t.Errorf("failed at %s: %q; want the health step and the probe's exit code", failed.Step, failed.Error)
	}
	if _, ok := status.find(events.TypeNodeUpdateCompleted, cmd); ok {
		t.Error("the command completed: recovery kept a container that fails the command's probe")
	}
	end := e.copies(t, node, name)
	if len(end) != 1 || !end[name] {
		t.Errorf("at the end: %v, want only %s running", end, name)
	}
	if now := e.inspect(t, name); now.ID != old.ID || now.Image != e.v1.ID || !now.State.Running {
		t.Errorf("at the end %s is %s running %v on image %s; want the old container %s on v1", name, now.ID[:12], now.State.Running, now.Image, old.ID[:12])
	}
}
