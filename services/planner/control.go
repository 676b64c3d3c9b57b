package planner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// load reads an upgrade after publishing what an earlier handler decided
// but did not publish, so a handler always starts from a flushed state.
func (p *Planner) load(ctx context.Context, id string) (*Upgrade, uint64, error) {
	u, rev, err := p.store.get(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if rev, err = p.flush(ctx, u, rev); err != nil {
		return nil, 0, err
	}
	return u, rev, nil
}

// onControl pauses, resumes, aborts, retries or promotes an upgrade, and
// answers the operator with dev.cutover.upgrade.control.answered: accepted
// (with what happens now) or refused (with why). Asking for the state the
// upgrade is already in is accepted and changes nothing.
func (p *Planner) onControl(ctx context.Context, e events.Event) error {
	id := events.UpgradeID(e)
	if id == "" {
		id = e.Subject()
	}
	d, err := events.DataAs[events.UpgradeControlRequested](e)
	if err != nil {
		return err
	}
	u, rev, err := p.load(ctx, id)
	if errors.Is(err, errNoUpgrade) {
		return p.refuseUnknown(ctx, e, id, d.Action)
	}
	if err != nil {
		return err
	}
	log := p.log.With("upgrade", id, "action", d.Action)
	if u.Final() && d.Action != events.ControlRetry {
		return p.refuse(ctx, e, u, d.Action, finishedReason(u))
	}
	var out []events.Event
	var answer string
	switch d.Action {
	case events.ControlPause:
		switch {
		case u.Phase == PhasePaused:
			return p.accept(ctx, e, u, d.Action, "already paused: "+u.Reason)
		case u.PauseRequested:
			return p.accept(ctx, e, u, d.Action, "a pause is already requested: no new wave starts after the one in flight")
		case u.Rollback != nil:
			return p.refuse(ctx, e, u, d.Action, fmt.Sprintf("it is rolling back (%s), which is not paused halfway; wait for it to finish or abort it", u.Rollback.Reason))
		}
		// The pause takes effect where the next step would start, after
		// the steps in flight settle.
		u.PauseRequested = true
		log.Info("pause requested")
		out = p.advance(e, u)
		answer = "pausing: no new wave starts after the one in flight"
		if u.Phase == PhasePaused {
			answer = "paused"
		}
	case events.ControlResume, events.ControlRetry, events.ControlPromote:
		if u.Phase == PhaseRunning && u.PauseRequested && d.Action == events.ControlResume {
			u.PauseRequested = false // not paused yet: just go on
			answer = "the pause requested is cancelled; the upgrade goes on"
			break
		}
		if u.Phase == PhaseRunning && d.Action == events.ControlPromote && u.PauseAfterCanary && !u.Promoted && u.Wave == 0 {
			u.Promoted = true // the canary is still rolling: no pause after it
			answer = "promoted before the canary finished: the upgrade will not pause after it"
			break
		}
		if reason := p.refuseContinue(u, d.Action); reason != "" {
			return p.refuse(ctx, e, u, d.Action, reason)
		}
		if u.Phase == PhaseRolledBack {
			if holder, err := p.lock(ctx, id); err != nil {
				return err
			} else if holder != "" {
				return p.refuse(ctx, e, u, d.Action, fmt.Sprintf("upgrade %s holds scope %q now; retry when it finished (cutover status %s)", holder, p.cfg.Scope, holder))
			}
			u.restart()
			answer = "retrying from wave 0: the rollback returned every node to its previous images"
		} else {
			answer = fmt.Sprintf("resumed at wave %d, retrying what failed in it", u.Wave)
			if u.AwaitingPromotion {
				answer = fmt.Sprintf("promoted: wave %d starts", u.Wave)
			}
			u.retryFailed()
		}
		if d.Action == events.ControlPromote {
			u.Promoted = true
		}
		u.AwaitingPromotion = false
		u.Phase, u.Reason = PhaseRunning, ""
		log.Info("resumed")
		out = p.advance(e, u)
	case events.ControlAbort:
		reason := d.Reason
		if reason == "" {
			reason = "aborted by operator"
		}
		// Nothing is rolled back: the fleet stays as it is, and the lock
		// is released once the event is out. Answers to commands in
		// flight still arrive and are recorded, but start nothing.
		u.Phase, u.Reason, u.PauseRequested, u.AwaitingPromotion = PhaseAborted, reason, false, false
		log.Info("aborted", "reason", reason)
		out = []events.Event{p.event(e, u, events.UpgradeAborted{Reason: reason, By: d.RequestedBy})}
		answer = "aborted: nothing more is sent and nothing is rolled back; the scope lock is released"
	default:
		return events.Permanent(fmt.Errorf("control upgrade %s: action %q is unknown; send pause, resume, abort, retry or promote", id, d.Action))
	}
	out = append(out, p.answer(e, u, d.Action, true, answer))
	return p.commit(ctx, u, rev, out...)
}

// refuseContinue says why an upgrade cannot resume, retry or be promoted,
// or "" when it can.
func (p *Planner) refuseContinue(u *Upgrade, action string) string {
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
func (u *Upgrade) retryFailed() {
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
		u.Gate.Since = time.Now().UTC()
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

// answer is the planner's reply to a control or rollback request.
func (p *Planner) answer(cause events.Event, u *Upgrade, action string, accepted bool, reason string) events.Event {
	return p.event(cause, u, events.UpgradeControlAnswered{Action: action, Accepted: accepted, Reason: reason, Phase: u.Phase})
}

// accept answers a request that changes nothing: the upgrade already is
// where it asks.
func (p *Planner) accept(ctx context.Context, cause events.Event, u *Upgrade, action, reason string) error {
	return p.pub.Publish(ctx, p.answer(cause, u, action, true, reason))
}

// refuse answers a request the planner will not act on, with why.
func (p *Planner) refuse(ctx context.Context, cause events.Event, u *Upgrade, action, reason string) error {
	p.log.Info("control refused", "upgrade", u.ID, "action", action, "reason", reason)
	return p.pub.Publish(ctx, p.answer(cause, u, action, false, "refused: "+reason))
}

// refuseUnknown answers a request for an upgrade the planner does not know
// (when its id can name a subject) and rejects it.
func (p *Planner) refuseUnknown(ctx context.Context, cause events.Event, id, action string) error {
	err := fmt.Errorf("%s upgrade %q: the planner does not know it; set the upgradeid extension (or subject) to an upgrade id from cutover list", action, id)
	if validID(id) {
		ans := events.MustNew(events.Source("planner", ""), events.UpgradeControlAnswered{Action: action, Reason: "refused: " + err.Error()},
			events.WithUpgrade(id), events.CausedBy(cause))
		if perr := p.pub.Publish(ctx, ans); perr != nil {
			return perr
		}
	}
	return events.Permanent(err)
}

// loadAnswered loads the upgrade an answer or verdict names in its upgradeid
// extension, with the outbox flushed. It returns a nil upgrade, and no
// error, when the event names none or one the planner does not know: such
// an event is no answer to anything the planner sent.
func (p *Planner) loadAnswered(ctx context.Context, e events.Event) (*Upgrade, uint64, error) {
	id := events.UpgradeID(e)
	if id == "" {
		return nil, 0, nil
	}
	u, rev, err := p.load(ctx, id)
	if errors.Is(err, errNoUpgrade) {
		return nil, 0, nil
	}
	return u, rev, err
}

// onDrained lets a drained node's command go out.
func (p *Planner) onDrained(ctx context.Context, e events.Event) error {
	if e.Type() != events.TypeNodeDrained {
		return nil
	}
	u, rev, err := p.loadAnswered(ctx, e)
	if u == nil || err != nil {
		return err
	}
	id := u.ID
	cause, node := events.CausationID(e), events.NodeID(e)
	for key, np := range u.Nodes {
		if np.Node == node && np.Status == NodeDraining && np.DrainID == cause {
			np = u.edit(key)
			np.Status, np.Drained = NodePending, true
			p.log.Info("node drained", "upgrade", id, "node", node)
			return p.commit(ctx, u, rev, p.advance(e, u)...)
		}
	}
	return nil // late (after the drain timeout) or repeated: changes nothing
}
