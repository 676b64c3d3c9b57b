package planner

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// The machine's inputs, one entry point each: a request, an answer (node,
// drain, migration, verdict), an operator's control or rollback, a poll
// of the deadlines or of a version barrier. Each changes the upgrade it is
// given and moves it on with transition.advance (machine.go), then returns
// the decision.

// --- requested ---------------------------------------------------------

// newUpgrade is the state of a request the planner accepted at now.
func (m machine) newUpgrade(id string, req events.UpgradeRequested, now time.Time) *Upgrade {
	if req.FailureAction == "" {
		req.FailureAction = "rollback"
	}
	u := &Upgrade{
		ID: id, Release: req.Release, FailureAction: req.FailureAction, Phase: PhaseRunning,
		// The planner's own clock, not the request's time attribute: a
		// client may leave time out (0001-01-01) or run ahead or behind,
		// and the duration reported at the end counts from here.
		RequestedAt: now.UTC(), Nodes: map[string]*NodeProgress{}, WaitForVerdicts: req.WaitForVerdicts,
		PauseAfterCanary: req.PauseAfterCanary,
	}
	if req.WaitForVerdicts {
		u.VerdictTimeout = m.verdictTimeout
		if req.VerdictTimeoutMs > 0 {
			u.VerdictTimeout = time.Duration(req.VerdictTimeoutMs) * time.Millisecond
		}
	}
	return u
}

// refused fails a new upgrade that cannot start: its scope is held, or it
// cannot be planned.
func (m machine) refused(cause events.Event, u *Upgrade, reason string, now time.Time) decision {
	t := m.on(cause, now)
	t.warn("upgrade refused", "upgrade", u.ID, "reason", reason)
	u.Phase, u.Reason = PhaseFailed, reason
	t.emit(t.event(u, events.UpgradeFailed{Reason: reason, Wave: -1}))
	return t.saved()
}

// planned starts a new upgrade on its plan: the plan's events, then as far
// as the upgrade goes (expand migrations, the first wave).
func (m machine) planned(cause events.Event, u *Upgrade, plan Plan, now time.Time) decision {
	t := m.on(cause, now)
	u.Plan = plan.UpgradePlanned
	for _, w := range plan.Waves {
		for _, n := range w.Nodes {
			key := StepKey(n, w.Index)
			u.Nodes[key] = &NodeProgress{Node: n, Wave: w.Index, Status: NodePending, Targets: plan.Targets[key], Drain: plan.Drain[key]}
		}
	}
	for _, mp := range plan.Migrations {
		u.Migrations = append(u.Migrations, &mp)
	}
	t.info("upgrade planned", "upgrade", u.ID, "release", u.Release.Name, "changes", len(plan.Changes), "waves", len(plan.Waves))
	t.plannedEvents(u, plan.UpgradePlanned)
	t.emit(t.event(u, events.UpgradeStarted{Waves: len(plan.Waves)}))
	t.advance(u)
	return t.saved()
}

// planParts bounds the changes one upgrade.planned event carries; a larger
// plan goes out in parts, so no event outgrows NATS's max_payload.
const planParts = 1000

// plannedEvents emits the events that carry a plan: one, or for a large
// plan several parts numbered from 1, the first with the waves.
func (t *transition) plannedEvents(u *Upgrade, plan events.UpgradePlanned) {
	if len(plan.Changes) <= planParts {
		t.emit(t.event(u, plan))
		return
	}
	parts := (len(plan.Changes) + planParts - 1) / planParts
	for i := range parts {
		part := events.UpgradePlanned{Release: plan.Release, Changes: plan.Changes[i*planParts : min((i+1)*planParts, len(plan.Changes))], Unchanged: plan.Unchanged, Waves: []events.PlannedWave{}, Part: i + 1, Parts: parts}
		if i == 0 {
			part.Waves = plan.Waves
		}
		t.emit(t.event(u, part))
	}
}

// --- answers -----------------------------------------------------------

// nodeResult records a node-updater's answer (results, and failure when it
// failed) to the command cmd, then advances. An answer to no command in
// flight changes nothing.
func (m machine) nodeResult(cause events.Event, u *Upgrade, node, cmd string, results []events.ContainerResult, failure string, now time.Time) decision {
	t := m.on(cause, now)
	switch {
	case u.Rollback != nil && u.Rollback.Current == node && u.Rollback.CommandID == cmd:
		if failure != "" {
			u.Rollback.Error = failure
		} else {
			u.Rollback.Done = append(u.Rollback.Done, node)
		}
		u.Rollback.Current, u.Rollback.CommandID = "", ""
	case u.step(node, cmd) != "":
		np := u.edit(u.step(node, cmd))
		np.Results = results
		if failure != "" {
			np.Status, np.Error = NodeFailed, failure
		} else {
			np.Status = NodeCompleted
		}
	default:
		return decision{} // stale or repeated: it changes nothing
	}
	t.advance(u)
	return t.saved()
}

// step returns the key of node's sent step whose command id is cmd, or "".
func (u *Upgrade) step(node, cmd string) string {
	for key, np := range u.Nodes {
		if np.Node == node && np.Status == NodeSent && np.CommandID == cmd {
			return key
		}
	}
	return ""
}

// drained lets a drained node's command go out: node answers the drain
// request drain.
func (m machine) drained(cause events.Event, u *Upgrade, node, drain string, now time.Time) decision {
	for key, np := range u.Nodes {
		if np.Node == node && np.Status == NodeDraining && np.DrainID == drain {
			t := m.on(cause, now)
			np = u.edit(key)
			np.Status, np.Drained = NodePending, true
			t.info("node drained", "upgrade", u.ID, "node", node)
			t.advance(u)
			return t.saved()
		}
	}
	return decision{} // late (after the drain timeout) or repeated: changes nothing
}

// migrationAnswer is the migrator's answer to a migration request.
type migrationAnswer struct {
	// Request is the id of the request answered.
	Request string
	// Failed and Error: the migration failed, leaving the database as Error says.
	Failed bool
	Error  string
	// SnapshotID is the snapshot the migrator took before expanding.
	SnapshotID string
}

// migrationResult records the migrator's answer to the request in flight,
// then advances.
func (m machine) migrationResult(cause events.Event, u *Upgrade, a migrationAnswer, now time.Time) decision {
	var mp *MigrationProgress
	for _, c := range u.Migrations {
		if c.CommandID == a.Request && (c.Expand == MigrationSent || c.Contract == MigrationSent || c.Rollback == MigrationSent) {
			mp = c
		}
	}
	if mp == nil {
		return decision{} // stale or repeated
	}
	t := m.on(cause, now)
	status := MigrationCompleted
	if a.Failed {
		status = MigrationFailed
	} else if mp.Expand == MigrationSent && a.SnapshotID != "" {
		mp.SnapshotID = a.SnapshotID
	}
	switch {
	case mp.Rollback == MigrationSent:
		mp.Rollback = status
	case mp.Expand == MigrationSent:
		// A failed expand: the migrator restored the database itself;
		// nothing to take back.
		mp.Expand = status
	default:
		mp.Contract = status
		if status == MigrationCompleted && mp.Commands != nil && mp.PostRoll+1 < len(mp.postRoll()) {
			// The next command after the barrier: the barrier check sends it.
			mp.PostRoll++
			mp.Contract = MigrationPending
		}
	}
	mp.Error, mp.CommandID = a.Error, ""
	t.info("migration answered", "upgrade", u.ID, "service", mp.Service, "type", cause.Type())
	t.advance(u)
	return t.saved()
}

// verdict records the auditor's verdict on a service of the wave the next
// wave waits for. Healthy verdicts on every service let the next wave start;
// a failing or inconclusive one pauses the upgrade (a failing verdict under
// a rollback policy also brings the auditor's rollback request, which the
// planner follows from the pause). Verdicts nobody waits for change nothing.
func (m machine) verdict(cause events.Event, u *Upgrade, v events.HealthVerdict, now time.Time) decision {
	g := u.Gate
	if g == nil || v.Wave != g.Wave || u.Rollback != nil || (u.Phase != PhaseRunning && u.Phase != PhasePaused) {
		return decision{}
	}
	i := slices.Index(g.Waiting, v.Service)
	if i < 0 {
		return decision{} // a service the wave did not change, or judged already
	}
	t := m.on(cause, now)
	attrs := []any{"upgrade", u.ID, "wave", v.Wave, "service", v.Service, "verdict", v.Verdict}
	if v.Verdict != "healthy" {
		evidence := "no evidence given"
		if len(v.Evidence) > 0 {
			evidence = v.Evidence[0]
		}
		reason := fmt.Sprintf("wave %d: the auditor judged %s %s (%s); the next wave waits. Resume to go on anyway, or roll back", v.Wave, v.Service, v.Verdict, evidence)
		u.Gate = nil
		t.warn("verdict stops the next wave", attrs...)
		if u.Phase == PhasePaused {
			u.Reason = reason + "; " + u.Reason
			return t.saved()
		}
		t.pause(u, reason)
		return t.saved()
	}
	g.Waiting = slices.Delete(slices.Clone(g.Waiting), i, i+1)
	t.info("healthy verdict", append(attrs, "still_waiting", g.Waiting)...)
	if len(g.Waiting) > 0 {
		return t.saved()
	}
	u.Gate = nil
	t.advance(u)
	return t.saved()
}

// --- operators ---------------------------------------------------------

// refuseRollback says why an upgrade cannot be rolled back, or "".
func refuseRollback(u *Upgrade) string {
	if u.Rollback != nil {
		return "it is already rolling back (" + u.Rollback.Reason + ")"
	}
	if u.Phase == PhaseAborted {
		if kept := replacedContainers(u); len(kept) > 0 {
			return fmt.Sprintf("it is aborted, and an aborted upgrade is never rolled back; it replaced %s, which keep their new images: to return them, apply a release with their previous images", kept.String())
		}
	}
	if u.Phase != PhaseRunning && u.Phase != PhaseCompleted && u.Phase != PhasePaused {
		return "it is " + u.Phase + ": nothing to roll back"
	}
	return ""
}

// keptContainers are containers an upgrade replaced, as node/container
// (previous image).
type keptContainers []string

// String names the first few and counts the rest.
func (k keptContainers) String() string {
	const shown = 5
	noun := "containers"
	if len(k) == 1 {
		noun = "container"
	}
	s := fmt.Sprintf("%d %s (%s", len(k), noun, strings.Join(k[:min(len(k), shown)], "; "))
	if len(k) > shown {
		s += fmt.Sprintf(", and %d more", len(k)-shown)
	}
	return s + ")"
}

// replacedContainers lists what u's steps replaced, in node and wave order.
func replacedContainers(u *Upgrade) keptContainers {
	var kept keptContainers
	for _, key := range slices.Sorted(maps.Keys(u.Nodes)) {
		n := u.Nodes[key]
		for _, r := range n.Results {
			if r.Result == events.ResultReplaced {
				kept = append(kept, fmt.Sprintf("%s/%s, previously %s", n.Node, r.Container, r.FromImage))
			}
		}
	}
	return kept
}

// rollback follows an operator's (or the auditor's) rollback request; the
// caller checked refuseRollback.
func (m machine) rollback(cause events.Event, u *Upgrade, reason string, now time.Time) decision {
	t := m.on(cause, now)
	u.Rollback = &RollbackProgress{Reason: reason, Queue: []string{}, Done: []string{}}
	if u.Phase == PhaseCompleted || u.Phase == PhasePaused {
		u.Phase = PhaseRunning // re-enter the state machine to roll back
	}
	u.AwaitingPromotion = false
	t.advance(u)
	t.emit(t.answer(u, "rollback", true, "rolling back the nodes updated so far, latest first"))
	return t.saved()
}

// refusal answers a request the planner will not act on, with why.
func (m machine) refusal(cause events.Event, u *Upgrade, action, reason string, now time.Time) decision {
	t := m.on(cause, now)
	t.info("control refused", "upgrade", u.ID, "action", action, "reason", reason)
	t.emit(t.answer(u, action, false, "refused: "+reason))
	return t.answered()
}

// answer is the planner's reply to a control or rollback request.
func (t *transition) answer(u *Upgrade, action string, accepted bool, reason string) events.Event {
	return t.event(u, events.UpgradeControlAnswered{Action: action, Accepted: accepted, Reason: reason, Phase: u.Phase})
}

// retakesScope reports whether action on u restarts a rolled-back upgrade,
// which must take its scope's lock again first (control's holder).
func retakesScope(u *Upgrade, action string) bool {
	return u.Phase == PhaseRolledBack && action == events.ControlRetry
}

// control pauses, resumes, aborts, retries or promotes an upgrade, and
// answers the operator: accepted (with what happens now) or refused (with
// why). Asking for the state the upgrade is already in is accepted and
// changes nothing. holder is the upgrade holding the scope when
// retakesScope, else "".
func (m machine) control(cause events.Event, u *Upgrade, c events.UpgradeControlRequested, holder, scope string, now time.Time) decision {
	t := m.on(cause, now)
	action := c.Action
	if u.Final() && action != events.ControlRetry {
		return m.refusal(cause, u, action, finishedReason(u), now)
	}
	var answer string
	switch action {
	case events.ControlPause:
		switch {
		case u.Phase == PhasePaused:
			t.emit(t.answer(u, action, true, "already paused: "+u.Reason))
			return t.answered()
		case u.PauseRequested:
			t.emit(t.answer(u, action, true, "a pause is already requested: no new wave starts after the one in flight"))
			return t.answered()
		case u.Rollback != nil:
			return m.refusal(cause, u, action, fmt.Sprintf("it is rolling back (%s), which is not paused halfway; wait for it to finish or abort it", u.Rollback.Reason), now)
		}
		// The pause takes effect where the next step would start, after
		// the steps in flight settle.
		u.PauseRequested = true
		t.info("pause requested", "upgrade", u.ID, "action", action)
		t.advance(u)
		answer = "pausing: no new wave starts after the one in flight"
		if u.Phase == PhasePaused {
			answer = "paused"
		}
	case events.ControlResume, events.ControlRetry, events.ControlPromote:
		if u.Phase == PhaseRunning && u.PauseRequested && action == events.ControlResume {
			u.PauseRequested = false // not paused yet: just go on
			answer = "the pause requested is cancelled; the upgrade goes on"
			break
		}
		if u.Phase == PhaseRunning && action == events.ControlPromote && u.PauseAfterCanary && !u.Promoted && u.Wave == 0 {
			u.Promoted = true // the canary is still rolling: no pause after it
			answer = "promoted before the canary finished: the upgrade will not pause after it"
			break
		}
		if reason := refuseContinue(u, action); reason != "" {
			return m.refusal(cause, u, action, reason, now)
		}
		if u.Phase == PhaseRolledBack {
			if holder != "" {
				return m.refusal(cause, u, action, fmt.Sprintf("upgrade %s holds scope %q now; retry when it finished (cutover status %s)", holder, scope, holder), now)
			}
			u.restart()
			answer = "retrying from wave 0: the rollback returned every node to its previous images"
		} else {
			answer = fmt.Sprintf("resumed at wave %d, retrying what failed in it", u.Wave)
			if u.AwaitingPromotion {
				answer = fmt.Sprintf("promoted: wave %d starts", u.Wave)
			}
			u.retryFailed(now)
		}
		if action == events.ControlPromote {
			u.Promoted = true
		}
		u.AwaitingPromotion = false
		u.Phase, u.Reason = PhaseRunning, ""
		t.info("resumed", "upgrade", u.ID, "action", action)
		t.advance(u)
	case events.ControlAbort:
		reason := c.Reason
		if reason == "" {
			reason = "aborted by operator"
		}
		// Nothing is rolled back: the fleet stays as it is, and the lock
		// is released once the event is out. Answers to commands in
		// flight still arrive and are recorded, but start nothing.
		u.Phase, u.Reason, u.PauseRequested, u.AwaitingPromotion = PhaseAborted, reason, false, false
		t.info("aborted", "upgrade", u.ID, "action", action, "reason", reason)
		t.emit(t.event(u, events.UpgradeAborted{Reason: reason, By: c.RequestedBy}))
		answer = "aborted: nothing more is sent and nothing is rolled back; the scope lock is released"
	default:
		return decision{err: events.Permanent(fmt.Errorf("control upgrade %s: action %q is unknown; send pause, resume, abort, retry or promote", u.ID, action))}
	}
	t.emit(t.answer(u, action, true, answer))
	return t.saved()
}

// refuseContinue says why an upgrade cannot resume, retry or be promoted,
// or "" when it can.
func refuseContinue(u *Upgrade, action string) string {
	switch {
	case action == events.ControlPromote && !u.AwaitingPromotion:
		if u.PauseAfterCanary && u.Promoted {
			return "it was promoted already"
		}
		return fmt.Sprintf("it is %s, not waiting for promotion after its canary (pause_after_canary: true in the release)", u.Phase)
	case u.Phase == PhaseRolledBack && action == events.ControlRetry:
		return ""
	case u.Phase == PhaseFailed && len(u.Nodes) == 0:
		return "it never started (" + u.Reason + "); fix that and apply the release again"
	case u.Final():
		return finishedReason(u)
	case u.Phase == PhaseRollingBack || u.Rollback != nil && u.Phase != PhasePaused:
		return "it is rolling back; wait for the rollback to finish"
	case u.Phase != PhasePaused:
		return fmt.Sprintf("it is %s, not paused", u.Phase)
	case u.Rollback != nil && u.Rollback.Error != "":
		return fmt.Sprintf("its rollback failed (%s) and going on would roll the fleet forward again over a half-reverted node; repair that node by hand, then run cutover abort %s", u.Rollback.Error, u.ID)
	}
	return ""
}

// finishedReason says that a final upgrade can no longer be controlled.
func finishedReason(u *Upgrade) string {
	r := "it already finished: " + u.Phase
	if u.Reason != "" {
		r += " (" + u.Reason + ")"
	}
	switch u.Phase {
	case PhaseRolledBack:
		r += "; start it again with cutover retry " + u.ID
	case PhaseCompleted:
		r += "; roll it back with cutover rollback " + u.ID
	}
	return r
}

// retryFailed makes what failed in the current step pending again.
func (u *Upgrade) retryFailed(now time.Time) {
	for _, key := range u.waveNodes(u.Wave) {
		if u.Nodes[key].Status == NodeFailed {
			np := u.edit(key)
			np.Status, np.Error, np.CommandID = NodePending, "", ""
		}
	}
	for _, m := range u.Migrations {
		if m.Expand == MigrationFailed {
			m.Expand, m.Error = MigrationPending, ""
		}
		if m.Contract == MigrationFailed {
			m.Contract, m.Error = MigrationPending, ""
		}
	}
	if u.Gate != nil {
		// The verdict timeout counts again from the resume.
		u.Gate.Since = now.UTC()
	}
}

// restart makes a rolled-back upgrade run its plan again from the first
// wave: the rollback returned every node (and database) it had changed.
func (u *Upgrade) restart() {
	for key := range u.Nodes {
		np := u.edit(key)
		np.Status, np.Error, np.CommandID, np.Results = NodePending, "", "", nil
		np.SentAt, np.DrainID, np.DrainRequestedAt, np.Drained = time.Time{}, "", time.Time{}, false
	}
	for _, m := range u.Migrations {
		m.Expand, m.Contract, m.Rollback, m.CommandID, m.SnapshotID, m.Error = MigrationPending, MigrationPending, "", "", "", ""
		m.PostRoll = 0
	}
	u.Wave, u.Rollback, u.Gate, u.Barrier, u.BarrierSince = 0, nil, nil, "", time.Time{}
	u.Promoted = false
}

// --- deadlines and the version barrier ---------------------------------

// expire fails the steps of an upgrade's wave that outlived their deadline
// at now: a command without an answer within the progress deadline, a
// drain without dev.cutover.node.drained within the drain timeout. An
// undrained node gets no command at all, so its workload hosts are never
// touched. A decision that does not save changed nothing.
func (m machine) expire(u *Upgrade, now time.Time) decision {
	var cause events.Event
	expired := false
	for _, key := range u.waveNodes(u.Wave) {
		np := u.Nodes[key]
		var reason string
		switch {
		case np.Status == NodeSent && now.Sub(latest(np.SentAt, u.WaveStartedAt)) >= m.progressDeadline:
			reason = fmt.Sprintf("%s: no answer to command %s within the progress deadline of %v; check that its node-updater runs (cutover-nodes KV)", np.Node, np.CommandID, m.progressDeadline)
			cause = expiredCause(np.CommandID, u.ID)
		case np.Status == NodeDraining && now.Sub(np.DrainRequestedAt) >= m.drainTimeout:
			reason = fmt.Sprintf("%s: not drained within %v (no dev.cutover.node.drained answering %s); its workload hosts were not touched; evacuate the node, then resume or request the upgrade again", np.Node, m.drainTimeout, np.DrainID)
			cause = expiredCause(np.DrainID, u.ID)
		default:
			continue
		}
		np = u.edit(key)
		np.Status, np.Error = NodeFailed, reason
		expired = true
	}
	if !expired {
		return decision{}
	}
	t := m.on(cause, now)
	t.warn("wave missed its deadline", "upgrade", u.ID, "wave", u.Wave)
	t.advance(u)
	return t.saved()
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// expireGate pauses an upgrade whose next wave waited longer than its
// verdict timeout: without verdicts nothing says the last wave is healthy.
func (m machine) expireGate(u *Upgrade, now time.Time) decision {
	g := u.Gate
	if g == nil || u.Phase != PhaseRunning || u.Rollback != nil || now.Sub(g.Since) < u.VerdictTimeout {
		return decision{}
	}
	t := m.on(expiredCause(u.ID, u.ID), now)
	reason := fmt.Sprintf("wave %d: no verdict from the auditor within %v for %s; check that the auditor runs and receives these services' health signals, then resume to go on without them, or roll back",
		g.Wave, u.VerdictTimeout, strings.Join(g.Waiting, ", "))
	u.Gate = nil
	t.warn("no verdicts in time; pausing", "upgrade", u.ID, "wave", g.Wave, "waiting", g.Waiting)
	t.pause(u, reason)
	return t.saved()
}

// barrierWaits returns the contract migration waiting at its version
// barrier, or nil when none does: then the fleet need not be read.
func barrierWaits(u *Upgrade) *MigrationProgress {
	if u.Phase != PhaseRunning || u.Rollback != nil || len(u.Outbox) > 0 || len(u.waveNodes(u.Wave)) > 0 {
		return nil
	}
	var mp *MigrationProgress
	for _, c := range u.Migrations {
		if c.Contract == MigrationSent {
			return nil
		}
		if c.Contract == MigrationPending {
			mp = c
			break
		}
	}
	if mp == nil || (mp.Commands != nil && mp.PostRoll >= len(mp.postRoll())) {
		return nil
	}
	return mp
}

// barrier sends the next contract migration (barrierWaits) once every
// instance of its service, as the node-updaters report them in fleet, runs
// the release's image: the version barrier contract migrations need,
// because they remove what old code still uses. While it waits, the upgrade
// says what for; past the barrier timeout it pauses.
func (m machine) barrier(u *Upgrade, mp *MigrationProgress, fleet []events.NodeInventory, now time.Time) decision {
	t := m.on(expiredCause(u.ID, u.ID), now)
	// An instance's target is what the plan sent it; an instance the plan
	// did not touch must already run the release's image.
	want := u.Release.Services[mp.Service].Image
	planned := map[string]string{}
	for _, np := range u.Nodes {
		for _, tg := range np.Targets {
			planned[np.Node+"/"+tg.Container] = tg.Image
		}
	}
	instances, behind := 0, []string{}
	for _, n := range fleet {
		for _, c := range n.Containers {
			if c.Service != mp.Service {
				continue
			}
			instances++
			target, ok := planned[n.Node+"/"+c.Name]
			if !ok {
				target = want
			}
			if c.Image != target {
				behind = append(behind, fmt.Sprintf("%s/%s runs %s", n.Node, c.Name, c.Image))
			}
		}
	}
	if len(behind) > 0 || instances == 0 {
		waiting := fmt.Sprintf("contract migration of %s waits for every instance on %s (cutover-nodes reports %d instances; behind: %s)", mp.Service, want, instances, strings.Join(behind, ", "))
		if u.BarrierSince.IsZero() {
			u.BarrierSince = now
		} else if waited := now.Sub(u.BarrierSince); waited >= m.barrierTimeout {
			u.Barrier, u.BarrierSince = "", time.Time{}
			reason := fmt.Sprintf("version barrier not reached within %v: %s; bring those instances to %s (or remove them from the node), then resume", m.barrierTimeout, waiting, want)
			t.warn("version barrier timed out; pausing", "upgrade", u.ID, "service", mp.Service, "waited", waited.Round(time.Second))
			t.pause(u, reason)
			return t.saved()
		} else if waiting == u.Barrier {
			return decision{}
		}
		u.Barrier = waiting
		return t.saved()
	}
	u.Barrier, u.BarrierSince = "", time.Time{}
	if u.PauseRequested {
		t.pause(u, "paused by operator")
		return t.saved()
	}
	t.info("version barrier reached", "upgrade", u.ID, "service", mp.Service, "image", want, "instances", instances)
	cmd := t.migration(u, mp, "contract")
	mp.Contract, mp.CommandID = MigrationSent, cmd.ID()
	t.emit(cmd)
	return t.saved()
}
