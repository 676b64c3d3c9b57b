package planner_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/planner"
)

// gatedUpgrade starts a planner, two nodes running web:v1 (so two waves of
// one node each) and an upgrade to web:v2 that waits for verdicts.
func gatedUpgrade(t *testing.T, timeoutMs int64) (*natstest.Server, *history, string) {
	t.Helper()
	s := natstest.Start(t)
	h := record(t, s)
	webNodes(t, s, "n1", "n2")
	fakeNode(t, s.JS, "n1", nil)
	fakeNode(t, s.JS, "n2", nil)
	startPlannerWith(t, s.JS, planner.Config{PollInterval: 20 * time.Millisecond})
	e := events.MustNew(events.Source("test", ""), events.UpgradeRequested{
		Release:         events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}},
		WaitForVerdicts: true, VerdictTimeoutMs: timeoutMs,
	})
	natstest.Publish(t, s.JS, e)
	return s, h, e.ID()
}

// awaitGate waits until the upgrade's second wave waits for verdicts on web.
func awaitGate(t *testing.T, js jetstream.JetStream, id string) *planner.Upgrade {
	t.Helper()
	var u *planner.Upgrade
	eventually(t, 15*time.Second, "the second wave to wait for verdicts on web", func() bool {
		u, _ = planner.LoadUpgrade(t.Context(), js, id)
		return u != nil && u.Gate != nil && u.Gate.Wave == 0 && strings.Join(u.Gate.Waiting, ",") == "web"
	})
	return u
}

func verdict(t *testing.T, js jetstream.JetStream, id string, wave int, service, v string) events.Event {
	t.Helper()
	e := events.MustNew(events.Source("auditor", ""), events.HealthVerdict{Service: service, Wave: wave, Verdict: v, Evidence: []string{"3 of 3 probes passed"}},
		events.WithUpgrade(id))
	natstest.Publish(t, js, e)
	return e
}

// The second wave starts only once the auditor judged the first wave's
// services healthy; verdicts on other waves or services do not open it.
func TestWaveWaitsForHealthyVerdicts(t *testing.T) {
	s, h, id := gatedUpgrade(t, 60_000)
	awaitGate(t, s.JS, id)
	if n := len(h.of(events.TypeNodeUpdateRequested)); n != 1 {
		t.Fatalf("%d node commands while the second wave waits for verdicts, want 1", n)
	}
	verdict(t, s.JS, id, 1, "web", "healthy") // another wave
	verdict(t, s.JS, id, 0, "db", "healthy")  // a service the wave did not change
	ok := verdict(t, s.JS, id, 0, "web", "healthy")
	waitPhase(t, s.JS, id, planner.PhaseCompleted)

	at := h.index(func(e events.Event) bool { return e.ID() == ok.ID() })
	var cmds []int
	for i, e := range h.All() {
		if e.Type() == events.TypeNodeUpdateRequested && events.UpgradeID(e) == id {
			cmds = append(cmds, i)
		}
	}
	if len(cmds) != 2 || at < 0 || cmds[1] < at {
		t.Errorf("node commands at %v, healthy verdict on wave 0 at %d: want the second command after the verdict", cmds, at)
	}
}

// A verdict that is not healthy, or none in time, pauses the upgrade with a
// reason; resume goes on without the missing verdicts.
func TestVerdictGatePauses(t *testing.T) {
	tests := []struct {
		name      string
		timeoutMs int64
		verdict   string // "" sends none
		reason    string
	}{
		{name: "inconclusive", timeoutMs: 60_000, verdict: "inconclusive", reason: "the auditor judged web inconclusive (3 of 3 probes passed)"},
		{name: "failing", timeoutMs: 60_000, verdict: "failing", reason: "the auditor judged web failing"},
		{name: "no verdict in time", timeoutMs: 200, reason: "no verdict from the auditor within 200ms for web"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, h, id := gatedUpgrade(t, tc.timeoutMs)
			awaitGate(t, s.JS, id)
			if tc.verdict != "" {
				verdict(t, s.JS, id, 0, "web", tc.verdict)
			}
			u := waitPhase(t, s.JS, id, planner.PhasePaused)
			if !strings.Contains(u.Reason, tc.reason) {
				t.Errorf("paused reason %q lacks %q", u.Reason, tc.reason)
			}
			if n := len(h.of(events.TypeNodeUpdateRequested)); n != 1 {
				t.Errorf("%d node commands after the pause, want 1", n)
			}
			control(t, s.JS, id, events.ControlResume)
			waitPhase(t, s.JS, id, planner.PhaseCompleted)
		})
	}
}
