package nodeupdater

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// execRuntime is a running container whose exec probe answers "exit 1" once
// and then hangs until its context ends.
type execRuntime struct {
	Runtime
	calls atomic.Int32
}

func (r *execRuntime) Inspect(ctx context.Context, id string) (Container, error) {
	return Container{ID: id, Running: true, State: "running"}, nil
}

func (r *execRuntime) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	if r.calls.Add(1) == 1 {
		return 1, "not ready", nil
	}
	<-ctx.Done()
	return 0, "", ctx.Err()
}

// A probe cut short by the gate's deadline does not hide the answer of the
// probe before it: the failure says why the container was not healthy.
func TestHealthGateReportsTheLastAnswer(t *testing.T) {
	rt := &execRuntime{}
	u := &Updater{rt: rt}
	g := healthGate{timeout: 300 * time.Millisecond, probe: &events.Probe{
		Type: events.ProbeExec, Command: []string{"/app", "health"}, IntervalMs: 10, TimeoutMs: 60_000,
	}}
	err := u.waitHealthy(t.Context(), "c1", g)
	if err == nil || !strings.Contains(err.Error(), `exited with 1: last check said "not ready"`) {
		t.Fatalf("waitHealthy: %v, want the first probe's exit code and output", err)
	}
	if n := rt.calls.Load(); n != 2 {
		t.Errorf("%d probes ran, want 2 (the second one hung)", n)
	}
}

// A probe that does not answer within its own timeout says so, apart from
// the gate's deadline.
func TestProbeTimeoutIsNamed(t *testing.T) {
	rt := &execRuntime{}
	rt.calls.Store(1) // every exec hangs
	u := &Updater{rt: rt}
	err := u.runProbe(t.Context(), Container{ID: "c1", Running: true}, events.Probe{
		Type: events.ProbeExec, Command: []string{"/app", "health"}, TimeoutMs: 20,
	})
	if err == nil || !strings.Contains(err.Error(), "no answer within the probe's timeout of 20ms") {
		t.Fatalf("runProbe: %v, want the probe's timeout named", err)
	}
}
