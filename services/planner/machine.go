package planner

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"

	"github.com/cutover-dev/cutover/events"
)

// machine is the planner's state machine. Given an upgrade's state, one
// input (a decoded event, a poll of the deadlines, the fleet a version
// barrier looks at) and the time, it changes the upgrade in place and says
// what to do: save it, publish events, log. It does no I/O: no NATS, no KV,
// no clock (the caller passes now). Its inputs are in machine_inputs.go;
// this file holds the walk they share (advance). The files around it do
// the I/O:
// handlers.go decodes events and loads upgrades, outbox.go saves and
// publishes a decision, lock.go holds the scope lock, deadline.go polls the
// deadlines and barriers, fleet.go reads the node-updaters' inventories.
//
// Every decision's events are built here; events.MustNew gives each a fresh
// id, and the machine sets its time from now.
type machine struct {
	progressDeadline time.Duration
	drainTimeout     time.Duration
	barrierTimeout   time.Duration
	verdictTimeout   time.Duration
}

func newMachine(cfg Config) machine {
	return machine{progressDeadline: cfg.ProgressDeadline, drainTimeout: cfg.DrainTimeout, barrierTimeout: cfg.BarrierTimeout, verdictTimeout: cfg.VerdictTimeout}
}

// decision is what the machine decided on one input.
type decision struct {
	// save says the upgrade changed: it is saved with events as its outbox.
	// Without save, events (answers to an operator) are published alone.
	save   bool
	events []events.Event
	logs   []logLine
	// err is a permanent error: the input can never be acted on.
	err error
}

// logLine is a log record the I/O layer writes for the machine.
type logLine struct {
	level slog.Level
	msg   string
	args  []any
}

// transition is one input's run through the machine: the upgrade changes
// in place; the events and log lines collect here.
type transition struct {
	machine
	cause events.Event
	now   time.Time
	d     decision
}

func (m machine) on(cause events.Event, now time.Time) *transition {
	return &transition{machine: m, cause: cause, now: now}
}

func (t *transition) info(msg string, args ...any) {
	t.d.logs = append(t.d.logs, logLine{slog.LevelInfo, msg, args})
}

func (t *transition) warn(msg string, args ...any) {
	t.d.logs = append(t.d.logs, logLine{slog.LevelWarn, msg, args})
}

// emit adds an event to publish.
func (t *transition) emit(e events.Event) {
	e.SetTime(t.now.UTC())
	t.d.events = append(t.d.events, e)
}

// event builds an event of the upgrade caused by the transition's input.
func (t *transition) event(u *Upgrade, d events.Data, opts ...events.Option) events.Event {
	return events.MustNew(events.Source("planner", ""), d, append([]events.Option{events.WithUpgrade(u.ID), events.CausedBy(t.cause)}, opts...)...)
}

// saved returns the decision to save the upgrade with the events emitted.
func (t *transition) saved() decision {
	t.d.save = true
	return t.d
}

// answered returns the decision to publish only the answers emitted: the
// upgrade did not change.
func (t *transition) answered() decision {
	t.d.save = false
	return t.d
}

// expiredCause stands for a request that got no answer: the cause of what follows.
func expiredCause(requestID, upgradeID string) events.Event {
	cause := cloudevent.New()
	cause.SetID(requestID)
	cause.SetExtension(events.ExtUpgradeID, upgradeID)
	return cause
}

// --- advance -----------------------------------------------------------

// advance moves an upgrade as far as its state allows and emits the events
// that say so.
//
// Order: expand migrations, then the waves (a drain first for steps that
// restart a workload host), then contract migrations once the version
// barrier holds (see barrier), then completion. A requested pause takes
// effect where a new step would start; a requested rollback waits for the
// steps in flight, then undoes what changed.
func (t *transition) advance(u *Upgrade) {
	for {
		switch {
		case u.Phase == PhaseRollingBack:
			t.advanceRollback(u)
			return
		case u.Phase != PhaseRunning:
			return
		}
		if !t.advanceExpand(u) {
			return
		} else if u.Phase != PhaseRunning {
			continue
		}
		nodes := u.waveNodes(u.Wave)
		if len(nodes) == 0 { // no waves left, or none at all
			if u.Rollback != nil {
				t.startRollback(u, u.Rollback.Reason)
				continue
			}
			if !t.advanceContract(u) {
				return
			} else if u.Phase != PhaseRunning {
				continue
			}
			u.Phase = PhaseCompleted
			replaced, unchanged := u.counts()
			t.emit(t.event(u, events.UpgradeCompleted{
				Release: u.Release.Name, Replaced: replaced, Unchanged: unchanged + u.Plan.Unchanged,
				DurationMs: max(0, t.now.Sub(u.RequestedAt).Milliseconds()), // never negative if the clock steps back
			}))
			return
		}
		if !t.advanceWave(u, nodes) {
			return
		}
	}
}

// advanceWave drives the current wave's nodes: it sends what is pending,
// waits for what is in flight, and once the wave settled applies
// failure_action or completes it. It reports whether advance goes on.
func (t *transition) advanceWave(u *Upgrade, nodes []string) bool {
	pending, busy, failed := 0, 0, []string{}
	for _, n := range nodes {
		if np := u.Nodes[n]; np.Status == NodeDraining && u.Rollback != nil {
			// No command went out: a rollback need not wait for the
			// evacuator, and its late answer changes nothing.
			u.edit(n).Status = NodePending
		}
		switch u.Nodes[n].Status {
		case NodePending:
			pending++
		case NodeSent, NodeDraining:
			busy++
		case NodeFailed:
			failed = append(failed, u.Nodes[n].Error)
		}
	}
	if pending > 0 && u.Rollback == nil {
		fresh := pending == len(nodes)
		if fresh && u.PauseRequested {
			t.pause(u, "paused by operator")
			return false
		}
		if fresh && u.Gate != nil {
			return false // wait for the verdicts on the wave before
		}
		t.sendWave(u, nodes, fresh)
		return false
	}
	if busy > 0 {
		return false // wait for the wave's nodes
	}
	if u.Rollback != nil {
		t.startRollback(u, u.Rollback.Reason)
		return true
	}
	if len(failed) > 0 && u.FailureAction != "continue" {
		reason := fmt.Sprintf("wave %d failed: %s", u.Wave, failed[0])
		if u.FailureAction == "pause" {
			t.pause(u, reason)
			return false
		}
		t.startRollback(u, reason)
		return true
	}
	replaced, unchanged := 0, 0
	var names []string
	for _, n := range nodes {
		names = append(names, u.Nodes[n].Node)
		for _, r := range u.Nodes[n].Results {
			switch r.Result {
			case events.ResultReplaced:
				replaced++
			case events.ResultUnchanged:
				unchanged++
			}
		}
	}
	t.emit(t.event(u, events.WaveCompleted{Wave: u.Wave, Nodes: names, Replaced: replaced, Unchanged: unchanged}))
	u.Gate = u.gateAfter(u.Wave, t.now)
	u.Wave++
	if u.Wave == 1 && u.PauseAfterCanary && !u.Promoted && len(u.waveNodes(1)) > 0 {
		// Argo Rollouts' manual promotion: the canary runs the release;
		// a person looks before the rest of the fleet follows.
		u.AwaitingPromotion = true
		t.pause(u, fmt.Sprintf("canary wave 0 completed (%s); waiting for cutover promote %s", strings.Join(names, ", "), u.ID))
		return false
	}
	return true
}

// sendWave sends the pending steps of the wave: a drain request for a step
// that restarts a workload host on an undrained node, else the command.
// A fresh wave also says it started.
func (t *transition) sendWave(u *Upgrade, nodes []string, fresh bool) {
	now := t.now.UTC()
	var names []string
	for _, n := range nodes {
		if u.Nodes[n].Status != NodePending {
			continue
		}
		np := u.edit(n)
		names = append(names, np.Node)
		if np.Drain && !np.Drained {
			// A workload host only restarts on a drained node.
			var hosts []string
			for _, tg := range np.Targets {
				hosts = append(hosts, tg.Container)
			}
			req := t.event(u, events.NodeDrainRequested{Wave: u.Wave, Containers: hosts, TimeoutMs: t.drainTimeout.Milliseconds()}, events.WithNode(np.Node))
			np.Status, np.DrainID, np.DrainRequestedAt = NodeDraining, req.ID(), now
			t.emit(req)
			continue
		}
		cmd := t.command(u, np.Node, np.Targets, false, np.Drained)
		np.Status, np.CommandID, np.SentAt = NodeSent, cmd.ID(), now
		t.emit(cmd)
	}
	if fresh {
		u.WaveStartedAt = now
		t.emit(t.event(u, events.WaveStarted{Wave: u.Wave, Nodes: names}))
	}
}

// pause stops the upgrade where it stands; it keeps the scope lock.
func (t *transition) pause(u *Upgrade, reason string) {
	u.Phase, u.Reason, u.PauseRequested = PhasePaused, reason, false
	t.emit(t.event(u, events.UpgradePaused{Reason: reason, Wave: u.Wave}))
}

// command is a node-updater command of the upgrade's current wave.
func (t *transition) command(u *Upgrade, node string, targets []events.ContainerTarget, rollback, drained bool) events.Event {
	return t.event(u, events.NodeUpdateRequested{Wave: u.Wave, Containers: targets, Rollback: rollback, Drained: drained}, events.WithNode(node))
}

// startRollback queues the nodes that changed, latest wave first.
func (t *transition) startRollback(u *Upgrade, reason string) {
	rb := u.Rollback
	if rb == nil {
		rb = &RollbackProgress{Reason: reason, Done: []string{}}
		u.Rollback = rb
	}
	rb.Reason = reason
	u.Gate = nil // no wave starts again
	var queue []string
	for n, np := range u.Nodes {
		if len(rollbackTargets(np)) > 0 {
			queue = append(queue, n)
		}
	}
	sort.Slice(queue, func(i, j int) bool {
		a, b := u.Nodes[queue[i]], u.Nodes[queue[j]]
		if a.Wave != b.Wave {
			return a.Wave > b.Wave
		}
		return queue[i] > queue[j]
	})
	rb.Queue = queue
	u.Phase = PhaseRollingBack
	t.info("rolling back", "upgrade", u.ID, "reason", reason, "nodes", queue)
}

// advanceRollback returns the changed nodes to their previous images one
// at a time, then the migrated databases; a failure stops and reports.
func (t *transition) advanceRollback(u *Upgrade) {
	rb := u.Rollback
	if rb.Current != "" {
		return // wait for the node in progress
	}
	if rb.Error != "" {
		// A rollback that fails stops and reports; it never loops.
		u.Phase, u.Reason = PhasePaused, "rollback failed: "+rb.Error
		t.emit(t.event(u, events.RollbackCompleted{Result: "failed", Nodes: rb.Done, Reason: rb.Error}))
		t.emit(t.event(u, events.UpgradePaused{Reason: u.Reason, Wave: u.Wave}))
		return
	}
	if len(rb.Queue) == 0 {
		if !t.advanceMigrationRollback(u) {
			return
		}
		if rb.Error != "" {
			t.advanceRollback(u)
			return
		}
		u.Phase, u.Reason = PhaseRolledBack, rb.Reason
		t.emit(t.event(u, events.RollbackCompleted{Result: "completed", Nodes: rb.Done, Reason: rb.Reason}))
		t.emit(t.event(u, events.UpgradeFailed{Reason: "rolled back: " + rb.Reason, Wave: u.Wave}))
		return
	}
	key := rb.Queue[0]
	rb.Queue = rb.Queue[1:]
	node := u.Nodes[key].Node
	cmd := t.command(u, node, rollbackTargets(u.Nodes[key]), true, u.Nodes[key].Drained)
	rb.Current, rb.CommandID = node, cmd.ID()
	t.emit(cmd)
}

// rollbackTargets returns the containers of a node that were replaced, with
// their previous image as target. Never the image already running.
func rollbackTargets(np *NodeProgress) []events.ContainerTarget {
	var out []events.ContainerTarget
	for _, r := range np.Results {
		if r.Result == events.ResultReplaced && r.FromImage != "" && r.FromImage != r.ToImage {
			out = append(out, events.ContainerTarget{Container: r.Container, Image: r.FromImage})
		}
	}
	return out
}

func (u *Upgrade) waveNodes(wave int) []string {
	var out []string
	for n, np := range u.Nodes {
		if np.Wave == wave {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (u *Upgrade) counts() (replaced, unchanged int) {
	for _, np := range u.Nodes {
		for _, r := range np.Results {
			switch r.Result {
			case events.ResultReplaced:
				replaced++
			case events.ResultUnchanged:
				unchanged++
			}
		}
	}
	return replaced, unchanged
}

// gateAfter returns what the wave after wave waits for when the upgrade
// asked to wait for verdicts: a healthy verdict on every service wave
// changed. It returns nil when there is nothing to wait for: no gate
// asked, no wave after it, or no service changed.
func (u *Upgrade) gateAfter(wave int, now time.Time) *VerdictGate {
	if !u.WaitForVerdicts || len(u.waveNodes(wave+1)) == 0 {
		return nil
	}
	// The auditor judges, after a wave, every service the plan changes on
	// the wave's nodes: the services of the wave's targets.
	var services []string
	for _, key := range u.waveNodes(wave) {
		for _, t := range u.Nodes[key].Targets {
			if t.Service != "" && !slices.Contains(services, t.Service) {
				services = append(services, t.Service)
			}
		}
	}
	if len(services) == 0 {
		return nil
	}
	slices.Sort(services)
	return &VerdictGate{Wave: wave, Since: now.UTC(), Waiting: services}
}

// --- migration phases --------------------------------------------------

// advanceExpand sends the expand migrations, one database at a time, before
// the first wave. It reports done when every expand completed (or a
// rollback skips the rest); otherwise the upgrade waits. A failed expand
// applies failure_action: pause, else rollback ("continue" does not apply:
// new code must not run on an unmigrated schema).
func (t *transition) advanceExpand(u *Upgrade) bool {
	for _, m := range u.Migrations {
		switch m.Expand {
		case MigrationCompleted, MigrationSkipped:
			continue
		case MigrationSent:
			return false // wait for the migrator, even when rolling back
		}
		if u.Rollback != nil {
			return true
		}
		if m.Expand == MigrationPending && m.Commands != nil && len(m.Commands.Expand) == 0 {
			m.Expand = MigrationSkipped // nothing to expand; a rollback has nothing to take back
			continue
		}
		if m.Expand == MigrationFailed {
			t.migrationFailed(u, "expand", m)
			return true
		}
		if u.PauseRequested {
			t.pause(u, "paused by operator")
			return true
		}
		cmd := t.migration(u, m, "expand")
		m.Expand, m.CommandID = MigrationSent, cmd.ID()
		t.emit(cmd)
		return false
	}
	return true
}

// advanceContract waits for the contract migrations after the last wave.
// A pending contract is sent by barrier once every instance of its service
// runs the new image, never after a fixed delay.
func (t *transition) advanceContract(u *Upgrade) bool {
	for _, m := range u.Migrations {
		if m.Contract == MigrationPending && m.Commands != nil && m.PostRoll >= len(m.postRoll()) {
			m.Contract = MigrationCompleted // no command after the barrier
		}
		switch m.Contract {
		case MigrationCompleted:
			continue
		case MigrationPending, MigrationSent:
			return false
		}
		t.migrationFailed(u, "contract", m)
		return true
	}
	return true
}

// migrationFailed applies failure_action to a failed migration: pause,
// else rollback ("continue" does not apply: new code must not run on an
// unmigrated schema, nor old code on a half-contracted one).
func (t *transition) migrationFailed(u *Upgrade, phase string, m *MigrationProgress) {
	reason := fmt.Sprintf("%s migration of %s failed: %s", phase, m.Service, m.Error)
	if u.FailureAction == "pause" {
		t.pause(u, reason)
		return
	}
	t.startRollback(u, reason)
}

// advanceMigrationRollback takes migrated databases back to their
// pre-upgrade versions, after the containers went back, latest first.
func (t *transition) advanceMigrationRollback(u *Upgrade) bool {
	for i := len(u.Migrations) - 1; i >= 0; i-- {
		m := u.Migrations[i]
		if !m.ran() || m.Rollback == MigrationCompleted {
			continue
		}
		switch m.Rollback {
		case MigrationSent:
			return false
		case MigrationFailed:
			u.Rollback.Error = fmt.Sprintf("database of %s: %s", m.Service, m.Error)
			return true
		}
		cmd := t.event(u, events.MigrationRollbackRequested{
			Driver: m.Driver, Database: m.Database, DatabaseID: m.Service, Source: m.Source, ToVersion: m.FromVersion, SnapshotID: m.SnapshotID,
		})
		m.Rollback, m.CommandID = MigrationSent, cmd.ID()
		t.emit(cmd)
		return false
	}
	return true
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

// migration is the request of a migration's phase: for a database migrated
// by commands, the command step in hand with the release's image and the
// inventory's container settings.
func (t *transition) migration(u *Upgrade, m *MigrationProgress, phase string) events.Event {
	if m.Commands == nil {
		return t.event(u, events.MigrationRequested{
			Service: m.Service, Driver: m.Driver, Database: m.Database, DatabaseID: m.Service, Source: m.Source, TargetVersion: m.ToVersion, Phase: phase,
			SnapshotMethod: m.SnapshotMethod, Fence: m.Fence,
		})
	}
	st := commandStep{"expand", m.Commands.Expand, false}
	if phase != "expand" {
		st = m.postRoll()[m.PostRoll]
	}
	c := m.Commands
	timeout := 0
	if d, err := time.ParseDuration(c.Timeout); err == nil {
		timeout = int(d.Seconds())
	}
	return t.event(u, events.MigrationRequested{
		Service: m.Service, Driver: m.Driver, Database: m.Database, DatabaseID: m.Service, Phase: st.phase, SnapshotMethod: m.SnapshotMethod,
		Command: &events.MigrationCommand{Image: m.Image, Command: st.cmd, Env: c.Env, Mounts: c.Mounts, Network: c.Network,
			TimeoutSeconds: timeout, VersionCommand: c.Version, Repeat: st.repeat},
	})
}
