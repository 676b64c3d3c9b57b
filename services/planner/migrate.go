package planner

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// advanceExpand sends the expand migrations, one database at a time, before
// the first wave. It reports done when every expand completed (or a
// rollback skips the rest); otherwise evs are what it decided and the
// upgrade waits. A failed expand applies failure_action: pause, else
// rollback ("continue" does not apply: new code must not run on an
// unmigrated schema).
func (p *Planner) advanceExpand(cause events.Event, u *Upgrade) (bool, []events.Event) {
	for _, m := range u.Migrations {
		switch m.Expand {
		case MigrationCompleted, MigrationSkipped:
			continue
		case MigrationSent:
			return false, nil // wait for the migrator, even when rolling back
		}
		if u.Rollback != nil {
			return true, nil
		}
		if m.Expand == MigrationPending && m.Commands != nil && len(m.Commands.Expand) == 0 {
			m.Expand = MigrationSkipped // nothing to expand; a rollback has nothing to take back
			continue
		}
		if m.Expand == MigrationFailed {
			reason := fmt.Sprintf("expand migration of %s failed: %s", m.Service, m.Error)
			if u.FailureAction == "pause" {
				return true, []events.Event{p.pause(cause, u, reason)}
			}
			p.startRollback(u, reason)
			return true, nil
		}
		if u.PauseRequested {
			return true, []events.Event{p.pause(cause, u, "paused by operator")}
		}
		cmd := p.migration(cause, u, m, "expand")
		m.Expand, m.CommandID = MigrationSent, cmd.ID()
		return false, []events.Event{cmd}
	}
	return true, nil
}

// advanceContract waits for the contract migrations after the last wave.
// A pending contract is sent by checkBarrier once every instance of its
// service runs the new image, never after a fixed delay.
func (p *Planner) advanceContract(cause events.Event, u *Upgrade) (bool, []events.Event) {
	for _, m := range u.Migrations {
		if m.Contract == MigrationPending && m.Commands != nil && m.PostRoll >= len(m.postRoll()) {
			m.Contract = MigrationCompleted // no command after the barrier
		}
		switch m.Contract {
		case MigrationCompleted:
			continue
		case MigrationPending, MigrationSent:
			return false, nil
		}
		reason := fmt.Sprintf("contract migration of %s failed: %s", m.Service, m.Error)
		if u.FailureAction == "pause" {
			return true, []events.Event{p.pause(cause, u, reason)}
		}
		p.startRollback(u, reason)
		return true, nil
	}
	return true, nil
}

// advanceMigrationRollback takes migrated databases back to their
// pre-upgrade versions, after the containers went back, latest first.
func (p *Planner) advanceMigrationRollback(cause events.Event, u *Upgrade) (bool, []events.Event) {
	for i := len(u.Migrations) - 1; i >= 0; i-- {
		m := u.Migrations[i]
		if !m.ran() || m.Rollback == MigrationCompleted {
			continue
		}
		switch m.Rollback {
		case MigrationSent:
			return false, nil
		case MigrationFailed:
			u.Rollback.Error = fmt.Sprintf("database of %s: %s", m.Service, m.Error)
			return true, nil
		}
		cmd := events.MustNew(events.Source("planner", ""), events.MigrationRollbackRequested{
			Driver: m.Driver, Database: m.Database, DatabaseID: m.Service, Source: m.Source, ToVersion: m.FromVersion, SnapshotID: m.SnapshotID,
		}, events.WithUpgrade(u.ID), events.CausedBy(cause))
		m.Rollback, m.CommandID = MigrationSent, cmd.ID()
		return false, []events.Event{cmd}
	}
	return true, nil
}

// commandStep is one migration command of a database migrated by commands.
type commandStep struct {
	phase  string
	cmd    []string
	repeat bool
}

// postRoll lists the command steps run after the version barrier, in order.
func (m *MigrationProgress) postRoll() []commandStep {
	c := m.Commands
	var out []commandStep
	if len(c.Migrate) > 0 {
		out = append(out, commandStep{"migrate", c.Migrate, false})
	}
	if len(c.OnlineData) > 0 {
		out = append(out, commandStep{"migrate", c.OnlineData, true})
	}
	if len(c.Contract) > 0 {
		out = append(out, commandStep{"contract", c.Contract, false})
	}
	return out
}

// commandRequest is the request of a command step: the release's image and
// the inventory's container settings.
func (p *Planner) commandRequest(cause events.Event, u *Upgrade, m *MigrationProgress, st commandStep) events.Event {
	c := m.Commands
	timeout := 0
	if d, err := time.ParseDuration(c.Timeout); err == nil {
		timeout = int(d.Seconds())
	}
	return events.MustNew(events.Source("planner", ""), events.MigrationRequested{
		Service: m.Service, Driver: m.Driver, Database: m.Database, DatabaseID: m.Service, Phase: st.phase, SnapshotMethod: m.SnapshotMethod,
		Command: &events.MigrationCommand{Image: m.Image, Command: st.cmd, Env: c.Env, Mounts: c.Mounts, Network: c.Network,
			TimeoutSeconds: timeout, VersionCommand: c.Version, Repeat: st.repeat},
	}, events.WithUpgrade(u.ID), events.CausedBy(cause))
}

func (p *Planner) migration(cause events.Event, u *Upgrade, m *MigrationProgress, phase string) events.Event {
	if m.Commands != nil {
		if phase == "expand" {
			return p.commandRequest(cause, u, m, commandStep{"expand", m.Commands.Expand, false})
		}
		return p.commandRequest(cause, u, m, m.postRoll()[m.PostRoll])
	}
	return events.MustNew(events.Source("planner", ""), events.MigrationRequested{
		Service: m.Service, Driver: m.Driver, Database: m.Database, DatabaseID: m.Service, Source: m.Source, TargetVersion: m.ToVersion, Phase: phase,
		SnapshotMethod: m.SnapshotMethod, Fence: m.Fence,
	}, events.WithUpgrade(u.ID), events.CausedBy(cause))
}

// onMigrationResult records the migrator's answer to the request in flight.
func (p *Planner) onMigrationResult(ctx context.Context, e events.Event) error {
	u, rev, err := p.loadAnswered(ctx, e)
	if u == nil || err != nil {
		return err
	}
	id := u.ID
	cause := events.CausationID(e)
	var m *MigrationProgress
	for _, c := range u.Migrations {
		if c.CommandID == cause && (c.Expand == MigrationSent || c.Contract == MigrationSent || c.Rollback == MigrationSent) {
			m = c
		}
	}
	if m == nil {
		return nil // stale or repeated
	}
	status, errText := MigrationCompleted, ""
	switch e.Type() {
	case events.TypeMigrationFailed:
		d, err := events.DataAs[events.MigrationFailed](e)
		if err != nil {
			return err
		}
		status, errText = MigrationFailed, fmt.Sprintf("%s (database now: %s)", d.Error, d.State)
	case events.TypeMigrationCompleted:
		d, err := events.DataAs[events.MigrationCompleted](e)
		if err != nil {
			return err
		}
		if m.Expand == MigrationSent && d.SnapshotID != "" {
			m.SnapshotID = d.SnapshotID
		}
	}
	switch {
	case m.Rollback == MigrationSent:
		m.Rollback = status
	case m.Expand == MigrationSent:
		m.Expand = status
		if status == MigrationFailed {
			// The migrator restored the database itself; nothing to take back.
			m.Expand = MigrationFailed
		}
	default:
		m.Contract = status
		if status == MigrationCompleted && m.Commands != nil && m.PostRoll+1 < len(m.postRoll()) {
			// The next command after the barrier: checkBarrier sends it.
			m.PostRoll++
			m.Contract = MigrationPending
		}
	}
	m.Error, m.CommandID = errText, ""
	p.log.Info("migration answered", "upgrade", id, "service", m.Service, "type", e.Type())
	return p.commit(ctx, u, rev, p.advance(e, u)...)
}

// checkBarrier sends the next contract migration once every instance of its
// service, as the node-updaters report them in cutover-nodes, runs the
// release's image: the version barrier contract migrations need, because
// they remove what old code still uses.
func (p *Planner) checkBarrier(ctx context.Context, u *Upgrade, rev uint64) error {
	id := u.ID
	if u.Phase != PhaseRunning || u.Rollback != nil || len(u.Outbox) > 0 || len(u.waveNodes(u.Wave)) > 0 {
		return nil
	}
	var m *MigrationProgress
	for _, c := range u.Migrations {
		if c.Contract == MigrationSent {
			return nil
		}
		if c.Contract == MigrationPending {
			m = c
			break
		}
	}
	if m == nil || (m.Commands != nil && m.PostRoll >= len(m.postRoll())) {
		return nil
	}
	fleet, err := p.fleet(ctx)
	if err != nil {
		return err
	}
	// An instance's target is what the plan sent it; an instance the plan
	// did not touch must already run the release's image.
	want := u.Release.Services[m.Service].Image
	planned := map[string]string{}
	for _, np := range u.Nodes {
		for _, t := range np.Targets {
			planned[np.Node+"/"+t.Container] = t.Image
		}
	}
	instances, behind := 0, []string{}
	for _, n := range fleet {
		for _, c := range n.Containers {
			if c.Service != m.Service {
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
		waiting := fmt.Sprintf("contract migration of %s waits for every instance on %s (cutover-nodes reports %d instances; behind: %s)", m.Service, want, instances, strings.Join(behind, ", "))
		now := time.Now()
		if u.BarrierSince.IsZero() {
			u.BarrierSince = now
		} else if waited := now.Sub(u.BarrierSince); waited >= p.cfg.BarrierTimeout {
			u.Barrier, u.BarrierSince = "", time.Time{}
			reason := fmt.Sprintf("version barrier not reached within %v: %s; bring those instances to %s (or remove them from the node), then resume", p.cfg.BarrierTimeout, waiting, want)
			p.log.Warn("version barrier timed out; pausing", "upgrade", id, "service", m.Service, "waited", waited.Round(time.Second))
			return p.commit(ctx, u, rev, p.pause(expiredCause(id, id), u, reason))
		} else if waiting == u.Barrier {
			return nil
		}
		u.Barrier = waiting
		return p.commit(ctx, u, rev)
	}
	u.Barrier, u.BarrierSince = "", time.Time{}
	if u.PauseRequested {
		return p.commit(ctx, u, rev, p.pause(expiredCause(id, id), u, "paused by operator"))
	}
	p.log.Info("version barrier reached", "upgrade", id, "service", m.Service, "image", want, "instances", instances)
	cmd := p.migration(expiredCause(id, id), u, m, "contract")
	m.Contract, m.CommandID = MigrationSent, cmd.ID()
	return p.commit(ctx, u, rev, cmd)
}
