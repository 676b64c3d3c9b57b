package planner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// The handlers decode an event, load the upgrade it concerns, take the
// scope lock or read the fleet when the machine needs them, and hand the
// machine's decision to apply (outbox.go). The state machine itself is in
// machine.go.

// handlers maps each event type the planner acts on to its handler. The
// consumer takes these types only; the others on its subjects (progress,
// heartbeats: the auditor's) are acked without a handler.
func (p *Planner) handlers() map[string]events.Handler {
	return map[string]events.Handler{
		events.TypeUpgradeRequested:           p.onRequested,
		events.TypeNodeUpdateCompleted:        p.onNodeResult,
		events.TypeNodeUpdateFailed:           p.onNodeResult,
		events.TypeRollbackRequested:          p.onRollbackRequested,
		events.TypeUpgradeControlRequested:    p.onControl,
		events.TypeMigrationCompleted:         p.onMigrationResult,
		events.TypeMigrationFailed:            p.onMigrationResult,
		events.TypeMigrationRollbackCompleted: p.onMigrationResult,
		events.TypeNodeDrained:                p.onDrained,
		events.TypeHealthVerdict:              p.onVerdict,
	}
}

func (p *Planner) handle(ctx context.Context, e events.Event) error {
	if h, ok := p.byType[e.Type()]; ok {
		return h(ctx, e)
	}
	return nil
}

// onRequested plans a new upgrade. The request's event id is the upgrade id.
func (p *Planner) onRequested(ctx context.Context, e events.Event) error {
	id := e.ID()
	if _, _, err := p.load(ctx, id); err == nil {
		return nil // a redelivered request: load finished what was decided
	} else if !errors.Is(err, errNoUpgrade) {
		return err
	}
	if !validID(id) {
		return events.Permanent(&events.FieldError{Field: "id", Reason: fmt.Sprintf("%q is not usable as an upgrade id: use letters, digits, '-', '_' or '=' (cutover apply uses a UUID)", id)})
	}
	req, err := events.DataAs[events.UpgradeRequested](e)
	if err != nil {
		return err
	}
	u := p.machine.newUpgrade(id, req, time.Now())
	if holder, err := p.lock(ctx, id); err != nil {
		return err
	} else if holder != "" {
		return p.apply(ctx, u, 0, p.machine.refused(e, u, fmt.Sprintf("upgrade %s is still running in scope %q; wait for it to finish (cutover status %s)", holder, p.cfg.Scope, holder), time.Now()))
	}
	fleet, err := p.fleet(ctx)
	if err != nil {
		return err
	}
	plan, err := Compute(req, fleet, p.cfg.Inventory)
	if err != nil {
		p.unlock(ctx, id)
		return p.apply(ctx, u, 0, p.machine.refused(e, u, err.Error(), time.Now()))
	}
	return p.apply(ctx, u, 0, p.machine.planned(e, u, plan, time.Now()))
}

func (p *Planner) onNodeResult(ctx context.Context, e events.Event) error {
	// An answer to a command not sent by a planner (e.g. by hand) is no one's.
	u, rev, err := p.loadAnswered(ctx, e)
	if u == nil || err != nil {
		return err
	}
	node := events.NodeID(e)
	var results []events.ContainerResult
	var failure string
	if e.Type() == events.TypeNodeUpdateCompleted {
		d, err := events.DataAs[events.NodeUpdateCompleted](e)
		if err != nil {
			return err
		}
		results = d.Results
	} else {
		d, err := events.DataAs[events.NodeUpdateFailed](e)
		if err != nil {
			return err
		}
		results = d.Results
		failure = fmt.Sprintf("%s: container %s failed at %s: %s", node, d.Container, d.Step, d.Error)
	}
	return p.apply(ctx, u, rev, p.machine.nodeResult(e, u, node, events.CausationID(e), results, failure, time.Now()))
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
	return p.apply(ctx, u, rev, p.machine.drained(e, u, events.NodeID(e), events.CausationID(e), time.Now()))
}

// onMigrationResult records the migrator's answer to the request in flight.
func (p *Planner) onMigrationResult(ctx context.Context, e events.Event) error {
	u, rev, err := p.loadAnswered(ctx, e)
	if u == nil || err != nil {
		return err
	}
	a := migrationAnswer{Request: events.CausationID(e)}
	switch e.Type() {
	case events.TypeMigrationFailed:
		d, err := events.DataAs[events.MigrationFailed](e)
		if err != nil {
			return err
		}
		a.Failed, a.Error = true, fmt.Sprintf("%s (database now: %s)", d.Error, d.State)
	case events.TypeMigrationCompleted:
		d, err := events.DataAs[events.MigrationCompleted](e)
		if err != nil {
			return err
		}
		a.SnapshotID = d.SnapshotID
	}
	return p.apply(ctx, u, rev, p.machine.migrationResult(e, u, a, time.Now()))
}

// onVerdict records the auditor's verdict on a service of a wave.
func (p *Planner) onVerdict(ctx context.Context, e events.Event) error {
	u, rev, err := p.loadAnswered(ctx, e)
	if u == nil || err != nil {
		return err
	}
	d, err := events.DataAs[events.HealthVerdict](e)
	if err != nil {
		return err
	}
	return p.apply(ctx, u, rev, p.machine.verdict(e, u, d, time.Now()))
}

func (p *Planner) onRollbackRequested(ctx context.Context, e events.Event) error {
	id := events.UpgradeID(e)
	if id == "" {
		id = e.Subject()
	}
	u, rev, err := p.load(ctx, id)
	if errors.Is(err, errNoUpgrade) {
		return p.refuseUnknown(ctx, e, id, "rollback")
	}
	if err != nil {
		return err
	}
	if reason := refuseRollback(u); reason != "" {
		return p.apply(ctx, u, rev, p.machine.refusal(e, u, "rollback", reason, time.Now()))
	}
	d, err := events.DataAs[events.RollbackRequested](e)
	if err != nil {
		return err
	}
	return p.apply(ctx, u, rev, p.machine.rollback(e, u, d.Reason, time.Now()))
}

// onControl pauses, resumes, aborts, retries or promotes an upgrade, and
// answers the operator with dev.cutover.upgrade.control.answered.
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
	holder := ""
	if retakesScope(u, d.Action) {
		if holder, err = p.lock(ctx, id); err != nil {
			return err
		}
	}
	return p.apply(ctx, u, rev, p.machine.control(e, u, d, holder, p.cfg.Scope, time.Now()))
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

// validID reports whether id can name an upgrade's keys: one KV key token.
func validID(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=') {
			return false
		}
	}
	return true
}
