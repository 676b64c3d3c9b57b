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

// onControl pauses, resumes or aborts an upgrade. Each action is
// idempotent: asking again for the state the upgrade is in changes nothing.
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
		return events.Permanent(fmt.Errorf("%s upgrade %q: the planner does not know it; set the upgradeid extension (or subject) to an upgrade id from cutover status", d.Action, id))
	}
	if err != nil {
		return err
	}
	log := p.log.With("upgrade", id, "action", d.Action)
	var out []events.Event
	switch d.Action {
	case events.ControlPause:
		if u.Phase != PhaseRunning || u.PauseRequested {
			return nil // paused, pausing, or past pausing
		}
		if u.Rollback != nil {
			return events.Permanent(fmt.Errorf("pause upgrade %s: it is rolling back (%s), which is not paused halfway; wait for it to finish or abort it", id, u.Rollback.Reason))
		}
		// The pause takes effect where the next step would start, after
		// the steps in flight settle.
		u.PauseRequested = true
		log.Info("pause requested")
		out = p.advance(e, u)
	case events.ControlResume:
		switch {
		case u.Phase == PhaseRunning && u.PauseRequested:
			u.PauseRequested = false // not paused yet: just go on
		case u.Phase != PhasePaused:
			return nil
		case u.Rollback != nil && u.Rollback.Error != "":
			return events.Permanent(fmt.Errorf("resume upgrade %s: refused, its rollback failed (%s) and resuming would roll the fleet forward again over a half-reverted node; repair that node by hand, then run cutover abort %s", id, u.Rollback.Error, id))
		default:
			// Resuming retries what failed in the current step.
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
			u.Phase, u.Reason = PhaseRunning, ""
			log.Info("resumed")
			out = p.advance(e, u)
		}
	case events.ControlAbort:
		if u.Final() {
			return nil
		}
		reason := d.Reason
		if reason == "" {
			reason = "aborted by operator"
		}
		// Nothing is rolled back: the fleet stays as it is, and the lock
		// is released once the event is out. Answers to commands in
		// flight still arrive and are recorded, but start nothing.
		u.Phase, u.Reason, u.PauseRequested = PhaseAborted, reason, false
		log.Info("aborted", "reason", reason)
		out = []events.Event{p.event(e, u, events.UpgradeAborted{Reason: reason, By: d.RequestedBy})}
	default:
		return events.Permanent(fmt.Errorf("control upgrade %s: action %q is unknown; send pause, resume or abort", id, d.Action))
	}
	return p.commit(ctx, u, rev, out...)
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
