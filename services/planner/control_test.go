package planner_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/planner"
)

// control publishes an operator's control request, as `cutover pause|resume|abort` does.
func control(t *testing.T, js jetstream.JetStream, id, action string) events.Event {
	t.Helper()
	e := events.MustNew(events.Source("test", ""), events.UpgradeControlRequested{Action: action, RequestedBy: "test"}, events.WithUpgrade(id))
	natstest.Publish(t, js, e)
	return e
}

func rollbackRequest(t *testing.T, js jetstream.JetStream, id string) {
	t.Helper()
	e := events.MustNew(events.Source("test", ""), events.RollbackRequested{Reason: "operator", RequestedBy: "test"}, events.WithUpgrade(id))
	natstest.Publish(t, js, e)
}

// commandsTo counts the node commands each node received, from the history.
func (h *history) commandsTo(upgrade string) map[string]int {
	out := map[string]int{}
	for _, c := range h.of(events.TypeNodeUpdateRequested) {
		if events.UpgradeID(c) == upgrade {
			out[events.NodeID(c)]++
		}
	}
	return out
}

// gatedNode is a fake node-updater that answers its first command only once
// open returns true, so a test can act while the command is in flight.
func gatedNode(t *testing.T, js jetstream.JetStream, node string, open func() bool, fail func(events.NodeUpdateRequested) bool) {
	t.Helper()
	fakeNode(t, js, node, func(d events.NodeUpdateRequested) bool {
		eventually(t, 15*time.Second, node+"'s gate", open)
		return fail != nil && fail(d)
	})
}

// webNodes puts web at v1 on each node (container web-<node>); with no
// inventory every wave holds one node.
func webNodes(t *testing.T, s *natstest.Server, nodes ...string) {
	t.Helper()
	for _, n := range nodes {
		putInventory(t, s.JS, n, web("web-"+n, "web:v1"))
	}
}

// heldUpgrade puts web nodes n1, n2 and n3 in the inventory, with n1
// answering only once open holds and a fake node-updater on each of fakes,
// starts a planner and requests web:v2; it returns the upgrade's id once n1
// has its command: an upgrade held in its first wave.
func heldUpgrade(t *testing.T, s *natstest.Server, h *history, open func() bool, fakes ...string) string {
	t.Helper()
	webNodes(t, s, "n1", "n2", "n3")
	gatedNode(t, s.JS, "n1", open, nil)
	for _, n := range fakes {
		fakeNode(t, s.JS, n, nil)
	}
	startPlanner(t, s.JS)
	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	eventually(t, 10*time.Second, "command to n1", func() bool { return h.commandsTo(id)["n1"] == 1 })
	return id
}

func TestPauseWaitsForTheWaveThenResumeFinishes(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	// n1 answers only after the pause was asked.
	id := heldUpgrade(t, s, h, func() bool { return len(h.of(events.TypeUpgradeControlRequested)) > 0 }, "n2", "n3")
	control(t, s.JS, id, events.ControlPause)
	control(t, s.JS, id, events.ControlPause) // idempotent
	u := waitPhase(t, s.JS, id, planner.PhasePaused)
	if u.Nodes[planner.StepKey("n1", 0)].Status != planner.NodeCompleted {
		t.Errorf("n1 = %+v; the wave in flight must settle before the pause", u.Nodes[planner.StepKey("n1", 0)])
	}
	if got := h.commandsTo(id); got["n2"] != 0 {
		t.Fatalf("commands while paused: %v; no new wave may start", got)
	}
	// A paused upgrade keeps the scope lock: a second request is refused naming it.
	second := request(t, s.JS, map[string]string{"web": "web:v3"})
	if u := waitPhase(t, s.JS, second, planner.PhaseFailed); !strings.Contains(u.Reason, id) {
		t.Errorf("second request refused with %q; want it to name %s", u.Reason, id)
	}

	control(t, s.JS, id, events.ControlResume)
	waitPhase(t, s.JS, id, planner.PhaseCompleted)
	control(t, s.JS, id, events.ControlResume) // a no-op now
	eventually(t, 5*time.Second, "completion in the history", func() bool { return len(h.of(events.TypeUpgradeCompleted)) == 1 })
	if got := h.commandsTo(id); got["n1"] != 1 || got["n2"] != 1 || got["n3"] != 1 {
		t.Errorf("commands per node = %v, want exactly 1 each", got)
	}
	if n := len(h.of(events.TypeUpgradePaused)); n != 1 {
		t.Errorf("%d upgrade.paused events, want 1 (pause is idempotent)", n)
	}
}

func TestAbortStopsForGoodWithoutRollback(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	id := heldUpgrade(t, s, h, func() bool { return len(h.of(events.TypeUpgradeAborted)) > 0 }, "n2", "n3")
	control(t, s.JS, id, events.ControlAbort)
	control(t, s.JS, id, events.ControlAbort)
	waitPhase(t, s.JS, id, planner.PhaseAborted)
	// n1's late answer is recorded but starts nothing.
	eventually(t, 10*time.Second, "n1's answer", func() bool {
		u, _ := planner.LoadUpgrade(t.Context(), s.JS, id)
		return u.Nodes[planner.StepKey("n1", 0)].Status == planner.NodeCompleted
	})
	// The lock is free: a new request runs to completion.
	next := request(t, s.JS, map[string]string{"web": "web:v2"})
	waitPhase(t, s.JS, next, planner.PhaseCompleted)

	if got := h.commandsTo(id); got["n1"] != 1 || got["n2"] != 0 || got["n3"] != 0 {
		t.Errorf("commands after abort = %v; want only the one in flight", got)
	}
	for _, c := range h.of(events.TypeNodeUpdateRequested) {
		if d, _ := events.DataAs[events.NodeUpdateRequested](c); d.Rollback {
			t.Errorf("rollback command to %s; abort rolls nothing back", events.NodeID(c))
		}
	}
	if n := len(h.of(events.TypeUpgradeAborted)); n != 1 {
		t.Errorf("%d upgrade.aborted events, want 1 (abort is idempotent)", n)
	}
}

func TestRollbackOfAPausedUpgrade(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	id := heldUpgrade(t, s, h, func() bool { return len(h.of(events.TypeUpgradeControlRequested)) > 0 }, "n2")
	control(t, s.JS, id, events.ControlPause)
	waitPhase(t, s.JS, id, planner.PhasePaused)
	rollbackRequest(t, s.JS, id)
	waitPhase(t, s.JS, id, planner.PhaseRolledBack)
	eventually(t, 5*time.Second, "n1's rollback command", func() bool { return h.commandsTo(id)["n1"] == 2 })
	if got := h.commandsTo(id); got["n2"] != 0 {
		t.Errorf("commands = %v; n2 was never updated, so it is not rolled back", got)
	}
}

func TestResumeAfterAFailedRollbackIsRefused(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	webNodes(t, s, "n1", "n2")
	fakeNode(t, s.JS, "n1", func(d events.NodeUpdateRequested) bool { return d.Rollback }) // its rollback fails
	fakeNode(t, s.JS, "n2", func(events.NodeUpdateRequested) bool { return true })
	startPlanner(t, s.JS)

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	u := waitPhase(t, s.JS, id, planner.PhasePaused)
	if !strings.HasPrefix(u.Reason, "rollback failed") {
		t.Fatalf("paused with %q, want a failed rollback", u.Reason)
	}
	resume := control(t, s.JS, id, events.ControlResume)
	if a := answerTo(t, h, resume); a.Accepted || !strings.Contains(a.Reason, "refused") || !strings.Contains(a.Reason, "cutover abort") {
		t.Errorf("answer to the resume = %+v, want refused naming cutover abort", a)
	}
	if u, _ := planner.LoadUpgrade(t.Context(), s.JS, id); u.Phase != planner.PhasePaused {
		t.Errorf("phase = %s after a refused resume, want paused", u.Phase)
	}
	// It still holds the lock until the operator aborts it.
	second := request(t, s.JS, map[string]string{"web": "web:v3"})
	waitPhase(t, s.JS, second, planner.PhaseFailed)
	control(t, s.JS, id, events.ControlAbort)
	waitPhase(t, s.JS, id, planner.PhaseAborted)
	// The lock is free: a request with nothing to change completes.
	waitPhase(t, s.JS, request(t, s.JS, map[string]string{"web": "web:v1"}), planner.PhaseCompleted)
}

// answerTo waits for the planner's answer to a control or rollback request.
func answerTo(t *testing.T, h *history, req events.Event) events.UpgradeControlAnswered {
	t.Helper()
	var a events.UpgradeControlAnswered
	eventually(t, 10*time.Second, "the answer to "+req.ID(), func() bool {
		for _, e := range h.of(events.TypeUpgradeControlAnswered) {
			if events.CausationID(e) == req.ID() {
				a, _ = events.DataAs[events.UpgradeControlAnswered](e)
				return true
			}
		}
		return false
	})
	return a
}

// TestControlAnswers checks that every control gets an answer: accepted,
// or refused with a reason the operator can act on.
func TestControlAnswers(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	var release atomic.Bool
	id := heldUpgrade(t, s, h, release.Load, "n2", "n3")
	check := func(action string, accepted bool, want string) {
		t.Helper()
		a := answerTo(t, h, control(t, s.JS, id, action))
		if a.Accepted != accepted || !strings.Contains(a.Reason, want) || a.Action != action {
			t.Errorf("%s: answer %+v, want accepted=%v with %q", action, a, accepted, want)
		}
	}
	check(events.ControlResume, false, "refused: it is running, not paused")
	check(events.ControlPromote, false, "not waiting for promotion")
	check(events.ControlRetry, false, "not paused")
	check(events.ControlPause, true, "pausing")
	check(events.ControlPause, true, "already requested")
	check(events.ControlResume, true, "pause requested is cancelled")
	release.Store(true)
	waitPhase(t, s.JS, id, planner.PhaseCompleted)
	check(events.ControlAbort, false, "refused: it already finished: completed")
	check(events.ControlResume, false, "already finished")
	check(events.ControlRetry, false, "already finished")

	unknown := events.MustNew(events.Source("test", ""), events.UpgradeControlRequested{Action: events.ControlPause}, events.WithUpgrade("no-such-upgrade"))
	natstest.Publish(t, s.JS, unknown)
	if a := answerTo(t, h, unknown); a.Accepted || !strings.Contains(a.Reason, "does not know it") {
		t.Errorf("answer for an unknown upgrade = %+v, want refused", a)
	}
}

// TestRetryOfARolledBackUpgrade fails n2 once: the upgrade rolls back, then
// cutover retry runs it again from the first wave to completion.
func TestRetryOfARolledBackUpgrade(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	webNodes(t, s, "n1", "n2")
	failures := 0
	fakeNode(t, s.JS, "n1", nil)
	fakeNode(t, s.JS, "n2", func(d events.NodeUpdateRequested) bool {
		failures++
		return failures == 1 // the registry was down the first time
	})
	startPlanner(t, s.JS)

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	waitPhase(t, s.JS, id, planner.PhaseRolledBack)
	a := answerTo(t, h, control(t, s.JS, id, events.ControlRetry))
	if !a.Accepted || !strings.Contains(a.Reason, "from wave 0") {
		t.Fatalf("retry answer = %+v, want accepted from wave 0", a)
	}
	u := waitPhase(t, s.JS, id, planner.PhaseCompleted)
	if u.Rollback != nil {
		t.Errorf("rollback %+v left on a completed retry", u.Rollback)
	}
	if got := h.commandsTo(id); got["n1"] != 3 || got["n2"] != 2 {
		t.Errorf("commands = %v, want n1: update, rollback, update; n2: failed update, update", got)
	}
}

// TestPauseAfterCanaryThenPromote: a pause_after_canary release stops
// after its first wave until cutover promote.
func TestPauseAfterCanaryThenPromote(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	webNodes(t, s, "n1", "n2", "n3")
	for _, n := range []string{"n1", "n2", "n3"} {
		fakeNode(t, s.JS, n, nil)
	}
	startPlanner(t, s.JS)
	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{PauseAfterCanary: true,
		Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	natstest.Publish(t, s.JS, req)
	id := req.ID()
	u := waitPhase(t, s.JS, id, planner.PhasePaused)
	if !u.AwaitingPromotion || !strings.Contains(u.Reason, "cutover promote "+id) {
		t.Errorf("paused %+v with %q, want awaiting promotion", u.AwaitingPromotion, u.Reason)
	}
	if got := h.commandsTo(id); got["n1"] != 1 || got["n2"] != 0 || got["n3"] != 0 {
		t.Fatalf("commands before promotion = %v, want the canary n1 only", got)
	}
	if a := answerTo(t, h, control(t, s.JS, id, events.ControlPromote)); !a.Accepted || !strings.Contains(a.Reason, "promoted: wave 1 starts") {
		t.Errorf("promote answer = %+v", a)
	}
	waitPhase(t, s.JS, id, planner.PhaseCompleted)
	if n := len(h.of(events.TypeUpgradePaused)); n != 1 {
		t.Errorf("%d pauses, want only the one after the canary", n)
	}
	if a := answerTo(t, h, control(t, s.JS, id, events.ControlPromote)); a.Accepted {
		t.Errorf("promote of a completed upgrade = %+v, want refused", a)
	}
}
