package planner

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
)

// The machine's transitions, one table row each, without NATS or a clock:
// every row builds the state it starts from by feeding the machine inputs,
// gives it one more, and checks the phase, the events decided (types, in
// order) and whatever else the transition promises.

// t0 is when every test upgrade is requested.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var testMachine = machine{progressDeadline: time.Minute, drainTimeout: 2 * time.Minute, barrierTimeout: 3 * time.Minute, verdictTimeout: 4 * time.Minute}

// fixture says what the test upgrade looks like. By default: service web
// from v1 to v2 on n1 (wave 0, the canary), then n2 and n3 (wave 1).
type fixture struct {
	failure    string                      // failure_action ("" = rollback)
	verdicts   bool                        // wait_for_verdicts
	canary     bool                        // pause_after_canary
	drain      bool                        // n1's step restarts a workload host
	noWaves    bool                        // nothing to change
	changes    int                         // plan changes beyond the three
	migration  *MigrationProgress          // one database migration
	commands   *inventory.DatabaseCommands // the migration runs commands
	verdictsMs int64                       // the request's verdict timeout
}

// requested is the upgrade as the request made it, before its plan.
func (f fixture) requested() *Upgrade {
	req := events.UpgradeRequested{Release: events.Release{Name: "r2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}},
		FailureAction: f.failure, WaitForVerdicts: f.verdicts, PauseAfterCanary: f.canary, VerdictTimeoutMs: f.verdictsMs}
	return testMachine.newUpgrade("u1", req, t0)
}

// plan is the fixture's plan.
func (f fixture) plan() Plan {
	p := Plan{UpgradePlanned: events.UpgradePlanned{Release: "r2", Unchanged: 1}, Targets: map[string][]events.ContainerTarget{}, Drain: map[string]bool{}}
	if !f.noWaves {
		for i, wave := range [][]string{{"n1"}, {"n2", "n3"}} {
			p.Waves = append(p.Waves, events.PlannedWave{Index: i, Nodes: wave})
			for _, n := range wave {
				p.Targets[StepKey(n, i)] = []events.ContainerTarget{{Container: "web-" + n, Service: "web", Image: "web:v2"}}
				p.Changes = append(p.Changes, events.ContainerChange{Node: n, Container: "web-" + n, Service: "web", FromImage: "web:v1", ToImage: "web:v2"})
			}
		}
		p.Drain[StepKey("n1", 0)] = f.drain
	}
	for range f.changes {
		p.Changes = append(p.Changes, events.ContainerChange{Node: "n9", Container: "x", Service: "x"})
	}
	if f.migration != nil {
		m := *f.migration
		m.Commands = f.commands
		p.Migrations = []MigrationProgress{m}
	}
	return p
}

// start is the upgrade planned and started at t0.
func (f fixture) start() *Upgrade {
	u := f.requested()
	planned(f)(u)
	return u
}

// planned plans the requested upgrade at t0.
func planned(f fixture) input {
	return func(u *Upgrade) decision { return testMachine.planned(cause("request"), u, f.plan(), t0) }
}

// migration is the fixture's database: web's, from version 1 to 3.
var migration = &MigrationProgress{Service: "web", Driver: "sqlite", Database: "file:web.db", Source: "file:///m", FromVersion: 1, ToVersion: 3,
	Expand: MigrationPending, Contract: MigrationPending, Image: "web:v2"}

// input is one input to the machine at a time after t0.
type input func(u *Upgrade) decision

// from returns the state f started and moved by inputs.
func from(f fixture, inputs ...input) func() *Upgrade {
	return func() *Upgrade {
		u := f.start()
		for _, in := range inputs {
			in(u)
		}
		return u
	}
}

func cause(id string) events.Event { return expiredCause(id, "u1") }

func at(d time.Duration) time.Time { return t0.Add(d) }

// sentTo returns the command id of node's step in flight.
func sentTo(u *Upgrade, node string) string {
	for _, np := range u.Nodes {
		if np.Node == node && np.Status == NodeSent {
			return np.CommandID
		}
	}
	return "no-command"
}

func replaced(node string) []events.ContainerResult {
	return []events.ContainerResult{{Container: "web-" + node, Result: events.ResultReplaced, FromImage: "web:v1", ToImage: "web:v2"}}
}

// done answers node's command: completed, every container replaced.
func done(node string) input {
	return func(u *Upgrade) decision {
		return testMachine.nodeResult(cause("answer"), u, node, sentTo(u, node), replaced(node), "", at(time.Second))
	}
}

// failed answers node's command: failed, after replacing its container.
func failed(node string) input {
	return func(u *Upgrade) decision {
		return testMachine.nodeResult(cause("answer"), u, node, sentTo(u, node), replaced(node), node+": health check failed", at(time.Second))
	}
}

// reverted answers the rollback command in flight; failure "" is success.
func reverted(failure string) input {
	return func(u *Upgrade) decision {
		rb := u.Rollback
		return testMachine.nodeResult(cause("answer"), u, rb.Current, rb.CommandID, nil, failure, at(time.Second))
	}
}

func control(action string) input {
	return func(u *Upgrade) decision {
		return testMachine.control(cause("control"), u, events.UpgradeControlRequested{Action: action, Reason: "", RequestedBy: "ops"}, "", "default", at(time.Minute))
	}
}

func rollback(u *Upgrade) decision {
	if reason := refuseRollback(u); reason != "" {
		return testMachine.refusal(cause("rollback"), u, "rollback", reason, at(time.Minute))
	}
	return testMachine.rollback(cause("rollback"), u, "operator", at(time.Minute))
}

// migrated answers the migration request in flight.
func migrated(failedWith string) input {
	return func(u *Upgrade) decision {
		a := migrationAnswer{Request: u.Migrations[0].CommandID, SnapshotID: "snap-1"}
		if failedWith != "" {
			a = migrationAnswer{Request: a.Request, Failed: true, Error: failedWith}
		}
		return testMachine.migrationResult(cause("migration"), u, a, at(time.Second))
	}
}

func verdict(service string, wave int, v string) input {
	return func(u *Upgrade) decision {
		return testMachine.verdict(cause("verdict"), u, events.HealthVerdict{Service: service, Wave: wave, Verdict: v, Evidence: []string{"p99 3s"}}, at(time.Minute))
	}
}

func poll(after time.Duration) input {
	return func(u *Upgrade) decision {
		if u.Gate != nil && u.Rollback == nil {
			return testMachine.expireGate(u, at(after))
		}
		return testMachine.expire(u, at(after))
	}
}

// fleetAt is the fleet a barrier reads: web on n1..n3 at image.
func fleetAt(image string, nodes ...string) []events.NodeInventory {
	var out []events.NodeInventory
	for _, n := range nodes {
		out = append(out, events.NodeInventory{Node: n, Containers: []events.ObservedContainer{{Name: "web-" + n, Service: "web", Image: image}}})
	}
	return out
}

func barrierAt(after time.Duration, image string) input {
	return func(u *Upgrade) decision {
		mp := barrierWaits(u)
		if mp == nil {
			return decision{}
		}
		return testMachine.barrier(u, mp, fleetAt(image, "n1", "n2", "n3"), at(after))
	}
}

var everyWave = []input{done("n1"), done("n2"), done("n3")}

func TestMachine(t *testing.T) {
	type row struct {
		name   string
		from   func() *Upgrade
		input  input
		phase  string
		events []string // types without "dev.cutover.", in order
		save   bool
		check  func(t *testing.T, u *Upgrade, d decision)
	}
	withMigration := fixture{migration: migration}
	commands := &inventory.DatabaseCommands{Migrate: []string{"db", "sync"}, OnlineData: []string{"db", "online"}, Contract: []string{"db", "contract"}}
	rows := []row{
		// requested
		{name: "requested: planned, the canary wave starts", from: fixture{}.requested, input: planned(fixture{}), phase: PhaseRunning,
			events: []string{"upgrade.planned", "upgrade.started", "node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if u.Wave != 0 || u.Nodes[StepKey("n1", 0)].Status != NodeSent || u.Nodes[StepKey("n2", 1)].Status != NodePending || !u.WaveStartedAt.Equal(t0) {
					t.Errorf("want n1 sent at t0, n2 pending: %+v", u.Nodes)
				}
			}},
		{name: "requested: the events of a plan", from: fixture{}.requested, input: planned(fixture{}), phase: PhaseRunning,
			events: []string{"upgrade.planned", "upgrade.started", "node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, d decision) {
				if u.FailureAction != "rollback" || !u.RequestedAt.Equal(t0) {
					t.Errorf("failure action %q, requested at %v: want rollback, t0", u.FailureAction, u.RequestedAt)
				}
				for _, e := range d.events {
					if !e.Time().Equal(t0) || events.UpgradeID(e) != "u1" || events.CausationID(e) != "request" {
						t.Errorf("%s: time %v, upgrade %q, cause %q", e.Type(), e.Time(), events.UpgradeID(e), events.CausationID(e))
					}
				}
			}},
		{name: "requested: a large plan goes out in parts", from: fixture{}.requested, input: planned(fixture{changes: planParts}), phase: PhaseRunning,
			events: []string{"upgrade.planned", "upgrade.planned", "upgrade.started", "node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				p1, _ := events.DataAs[events.UpgradePlanned](d.events[0])
				p2, _ := events.DataAs[events.UpgradePlanned](d.events[1])
				if p1.Part != 1 || p2.Parts != 2 || len(p1.Changes) != planParts || len(p2.Changes) != 3 || len(p1.Waves) != 2 || len(p2.Waves) != 0 {
					t.Errorf("parts %d/%d with %d+%d changes, %d+%d waves", p1.Part, p2.Parts, len(p1.Changes), len(p2.Changes), len(p1.Waves), len(p2.Waves))
				}
			}},
		{name: "requested: nothing to change completes at once", from: fixture{noWaves: true}.requested, input: planned(fixture{noWaves: true}), phase: PhaseCompleted,
			events: []string{"upgrade.planned", "upgrade.started", "upgrade.completed"}, save: true},
		{name: "requested: refused (scope held or no plan)", from: fixture{}.requested, input: func(u *Upgrade) decision {
			return testMachine.refused(cause("request"), u, "upgrade u0 is still running", t0)
		}, phase: PhaseFailed, events: []string{"upgrade.failed"}, save: true},
		{name: "requested: the verdict timeout comes from the request, else the config", from: fixture{verdicts: true, verdictsMs: 1500}.requested,
			input: planned(fixture{}), phase: PhaseRunning, events: []string{"upgrade.planned", "upgrade.started", "node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if got := (fixture{verdicts: true}).requested().VerdictTimeout; got != testMachine.verdictTimeout {
					t.Errorf("verdict timeout %v, want the config's %v", got, testMachine.verdictTimeout)
				}
				if u.VerdictTimeout != 1500*time.Millisecond {
					t.Errorf("verdict timeout %v, want the request's 1.5s", u.VerdictTimeout)
				}
			}},

		// waves
		{name: "wave completed: the next wave starts", from: from(fixture{}), input: done("n1"), phase: PhaseRunning,
			events: []string{"upgrade.wave.completed", "node.update.requested", "node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if u.Wave != 1 || !u.WaveStartedAt.Equal(at(time.Second)) {
					t.Errorf("wave %d started %v, want wave 1 at t0+1s", u.Wave, u.WaveStartedAt)
				}
			}},
		{name: "wave in progress: one node of two answered", from: from(fixture{}, done("n1")), input: done("n2"), phase: PhaseRunning, save: true},
		{name: "last wave completed: the upgrade completes", from: from(fixture{}, done("n1"), done("n2")), input: done("n3"), phase: PhaseCompleted,
			events: []string{"upgrade.wave.completed", "upgrade.completed"}, save: true,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				c, err := events.DataAs[events.UpgradeCompleted](d.events[1])
				if err != nil || c.Replaced != 3 || c.Unchanged != 1 || c.DurationMs != 1000 {
					t.Errorf("completed %+v (%v): want 3 replaced, 1 unchanged, 1000ms", c, err)
				}
			}},
		{name: "stale answer changes nothing", from: from(fixture{}), input: func(u *Upgrade) decision {
			return testMachine.nodeResult(cause("answer"), u, "n1", "an-old-command", replaced("n1"), "", t0)
		}, phase: PhaseRunning},
		{name: "wave failed, rollback: the changed nodes go back", from: from(fixture{}, done("n1"), done("n2")), input: failed("n3"), phase: PhaseRollingBack,
			events: []string{"node.update.requested"}, save: true,
			check: func(t *testing.T, u *Upgrade, d decision) {
				// Latest wave first; n3 failed after replacing, so it goes back too.
				if u.Rollback.Current != "n3" || !slices.Equal(u.Rollback.Queue, []string{StepKey("n2", 1), StepKey("n1", 0)}) {
					t.Errorf("rollback %+v: want n3 now, then n2, n1", u.Rollback)
				}
				if c, _ := events.DataAs[events.NodeUpdateRequested](d.events[0]); !c.Rollback || c.Containers[0].Image != "web:v1" {
					t.Errorf("rollback command %+v: want web:v1", c)
				}
			}},
		{name: "wave failed, pause", from: from(fixture{failure: "pause"}), input: failed("n1"), phase: PhasePaused, events: []string{"upgrade.paused"}, save: true},
		{name: "wave failed, continue", from: from(fixture{failure: "continue"}), input: failed("n1"), phase: PhaseRunning,
			events: []string{"upgrade.wave.completed", "node.update.requested", "node.update.requested", "upgrade.wave.started"}, save: true},
		{name: "drain first: a workload host's step asks for a drain", from: fixture{drain: true}.requested, input: planned(fixture{drain: true}), phase: PhaseRunning,
			events: []string{"upgrade.planned", "upgrade.started", "node.drain.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if np := u.Nodes[StepKey("n1", 0)]; np.Status != NodeDraining || np.DrainID == "" || np.CommandID != "" {
					t.Errorf("n1 %+v: want draining, no command", np)
				}
			}},
		{name: "drained: the command goes out", from: from(fixture{drain: true}), input: func(u *Upgrade) decision {
			return testMachine.drained(cause("drained"), u, "n1", u.Nodes[StepKey("n1", 0)].DrainID, at(time.Second))
		}, phase: PhaseRunning, events: []string{"node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				if c, _ := events.DataAs[events.NodeUpdateRequested](d.events[0]); !c.Drained {
					t.Error("the command does not say the node is drained")
				}
			}},
		{name: "drained late or repeated changes nothing", from: from(fixture{drain: true}), input: func(u *Upgrade) decision {
			return testMachine.drained(cause("drained"), u, "n1", "another-drain", at(time.Second))
		}, phase: PhaseRunning},

		// deadlines
		{name: "progress deadline not reached", from: from(fixture{}), input: poll(59 * time.Second), phase: PhaseRunning},
		{name: "progress deadline passed: the wave fails", from: from(fixture{failure: "pause"}), input: poll(time.Minute), phase: PhasePaused,
			events: []string{"upgrade.paused"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if !strings.Contains(u.Reason, "n1: no answer to command") {
					t.Errorf("reason %q does not name n1", u.Reason)
				}
			}},
		{name: "drain timeout: failed without a command", from: from(fixture{drain: true}), input: poll(2 * time.Minute), phase: PhaseRolledBack,
			events: []string{"rollback.completed", "upgrade.failed"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if np := u.Nodes[StepKey("n1", 0)]; np.Status != NodeFailed || np.CommandID != "" || !strings.Contains(np.Error, "not drained") {
					t.Errorf("n1 %+v: want failed undrained, no command", np)
				}
			}},

		// operators
		{name: "pause with a wave in flight: requested", from: from(fixture{}), input: control(events.ControlPause), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, save: true, check: answerSays(true, "pausing")},
		{name: "pause takes effect where the next wave would start", from: from(fixture{}, control(events.ControlPause)), input: done("n1"), phase: PhasePaused,
			events: []string{"upgrade.wave.completed", "upgrade.paused"}, save: true},
		{name: "pause when paused: accepted, nothing changes", from: from(fixture{failure: "pause"}, failed("n1")), input: control(events.ControlPause), phase: PhasePaused,
			events: []string{"upgrade.control.answered"}, check: answerSays(true, "already paused")},
		{name: "pause when a pause is requested: accepted", from: from(fixture{}, control(events.ControlPause)), input: control(events.ControlPause), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, check: answerSays(true, "already requested")},
		{name: "pause while rolling back: refused", from: from(fixture{}, failed("n1")), input: control(events.ControlPause), phase: PhaseRollingBack,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "rolling back")},
		{name: "resume: what failed is sent again", from: from(fixture{failure: "pause"}, failed("n1")), input: control(events.ControlResume), phase: PhaseRunning,
			events: []string{"node.update.requested", "upgrade.wave.started", "upgrade.control.answered"}, save: true, check: answerSays(true, "resumed at wave 0")},
		{name: "resume with a pause requested: the pause is cancelled", from: from(fixture{}, control(events.ControlPause)), input: control(events.ControlResume), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, save: true,
			check: func(t *testing.T, u *Upgrade, d decision) {
				answerSays(true, "pause requested is cancelled")(t, u, d)
				if u.PauseRequested {
					t.Error("the pause is still requested")
				}
			}},
		{name: "resume when running: refused", from: from(fixture{}), input: control(events.ControlResume), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "not paused")},
		{name: "resume after a failed rollback: refused", from: from(fixture{}, failed("n1"), reverted("n1: docker down")), input: control(events.ControlResume), phase: PhasePaused,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "its rollback failed")},
		{name: "control of a finished upgrade: refused", from: from(fixture{}, everyWave...), input: control(events.ControlResume), phase: PhaseCompleted,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "cutover rollback u1")},
		{name: "abort: final, nothing rolled back", from: from(fixture{}, done("n1")), input: control(events.ControlAbort), phase: PhaseAborted,
			events: []string{"upgrade.aborted", "upgrade.control.answered"}, save: true,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				if a, _ := events.DataAs[events.UpgradeAborted](d.events[0]); a.Reason != "aborted by operator" || a.By != "ops" {
					t.Errorf("aborted %+v", a)
				}
			}},
		{name: "unknown action: a permanent error", from: from(fixture{}), input: control("explode"), phase: PhaseRunning,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				if !errors.As(d.err, new(*events.PermanentError)) || !strings.Contains(d.err.Error(), `"explode"`) {
					t.Errorf("err %v: want permanent, naming the action", d.err)
				}
			}},
		{name: "retry a rolled-back upgrade: from wave 0", from: from(fixture{}, failed("n1"), reverted("")), input: control(events.ControlRetry), phase: PhaseRunning,
			events: []string{"node.update.requested", "upgrade.wave.started", "upgrade.control.answered"}, save: true,
			check: func(t *testing.T, u *Upgrade, d decision) {
				answerSays(true, "retrying from wave 0")(t, u, d)
				if !retakesScope(u, events.ControlRetry) && u.Rollback != nil {
					t.Errorf("rollback %+v left after the retry", u.Rollback)
				}
			}},
		{name: "retry while another upgrade holds the scope: refused", from: from(fixture{}, failed("n1"), reverted("")), input: func(u *Upgrade) decision {
			if !retakesScope(u, events.ControlRetry) {
				t.Error("a retry of a rolled-back upgrade does not take the scope again")
			}
			return testMachine.control(cause("control"), u, events.UpgradeControlRequested{Action: events.ControlRetry}, "u2", "default", at(time.Minute))
		}, phase: PhaseRolledBack, events: []string{"upgrade.control.answered"}, check: answerSays(false, "upgrade u2 holds scope")},
		{name: "canary completed: awaits promotion", from: from(fixture{canary: true}), input: done("n1"), phase: PhasePaused,
			events: []string{"upgrade.wave.completed", "upgrade.paused"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if !u.AwaitingPromotion {
					t.Error("not awaiting promotion")
				}
			}},
		{name: "promote: the next wave starts", from: from(fixture{canary: true}, done("n1")), input: control(events.ControlPromote), phase: PhaseRunning,
			events: []string{"node.update.requested", "node.update.requested", "upgrade.wave.started", "upgrade.control.answered"}, save: true, check: answerSays(true, "promoted: wave 1 starts")},
		{name: "promote before the canary finished: no pause after it", from: from(fixture{canary: true}), input: control(events.ControlPromote), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, save: true, check: answerSays(true, "will not pause")},
		{name: "promote when not awaiting promotion: refused", from: from(fixture{}), input: control(events.ControlPromote), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "not waiting for promotion")},

		{name: "promote twice: refused", from: from(fixture{canary: true}, done("n1"), control(events.ControlPromote)), input: control(events.ControlPromote), phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "promoted already")},
		{name: "resume an upgrade that never started: refused", from: func() *Upgrade {
			u := fixture{}.requested()
			testMachine.refused(cause("request"), u, "no node runs web", t0)
			return u
		}, input: control(events.ControlRetry), phase: PhaseFailed, events: []string{"upgrade.control.answered"}, check: answerSays(false, "never started (no node runs web)")},

		// rollback
		{name: "rollback of a completed upgrade", from: from(fixture{}, everyWave...), input: rollback, phase: PhaseRollingBack,
			events: []string{"node.update.requested", "upgrade.control.answered"}, save: true, check: answerSays(true, "rolling back")},
		{name: "rollback while rolling back: refused", from: from(fixture{}, failed("n1")), input: rollback, phase: PhaseRollingBack,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "already rolling back")},
		{name: "rollback of an aborted upgrade: refused", from: from(fixture{}, control(events.ControlAbort)), input: rollback, phase: PhaseAborted,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "nothing to roll back")},
		{name: "rollback of an aborted upgrade that replaced a container: refused, naming it", from: from(fixture{}, done("n1"), control(events.ControlAbort)), input: rollback, phase: PhaseAborted,
			events: []string{"upgrade.control.answered"}, check: answerSays(false, "never rolled back; it replaced 1 container (n1/web-n1, previously web:v1), which keep their new images: to return them, apply a release")},
		{name: "rollback with a wave in flight waits for it", from: from(fixture{}, done("n1")), input: rollback, phase: PhaseRunning,
			events: []string{"upgrade.control.answered"}, save: true},
		{name: "rollback while a node drains: no wait for the evacuator", from: from(fixture{drain: true}), input: rollback, phase: PhaseRolledBack,
			events: []string{"rollback.completed", "upgrade.failed", "upgrade.control.answered"}, save: true},
		{name: "rollback: one node back, the next goes", from: from(fixture{}, done("n1"), done("n2"), failed("n3")), input: reverted(""), phase: PhaseRollingBack,
			events: []string{"node.update.requested"}, save: true},
		{name: "rollback: the last node back, rolled back", from: from(fixture{}, failed("n1")), input: reverted(""), phase: PhaseRolledBack,
			events: []string{"rollback.completed", "upgrade.failed"}, save: true},
		{name: "rollback: a node fails to go back, paused", from: from(fixture{}, failed("n1")), input: reverted("n1: docker down"), phase: PhasePaused,
			events: []string{"rollback.completed", "upgrade.paused"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if !strings.HasPrefix(u.Reason, "rollback failed: n1: docker down") {
					t.Errorf("reason %q", u.Reason)
				}
			}},

		// verdicts
		{name: "verdict gate: the next wave waits", from: from(fixture{verdicts: true}), input: done("n1"), phase: PhaseRunning,
			events: []string{"upgrade.wave.completed"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if u.Gate == nil || u.Gate.Wave != 0 || !slices.Equal(u.Gate.Waiting, []string{"web"}) || !u.Gate.Since.Equal(at(time.Second)) {
					t.Errorf("gate %+v: want wave 0 waiting for web since t0+1s", u.Gate)
				}
			}},
		{name: "verdict healthy: the next wave starts", from: from(fixture{verdicts: true}, done("n1")), input: verdict("web", 0, "healthy"), phase: PhaseRunning,
			events: []string{"node.update.requested", "node.update.requested", "upgrade.wave.started"}, save: true},
		{name: "verdict failing: paused", from: from(fixture{verdicts: true}, done("n1")), input: verdict("web", 0, "failing"), phase: PhasePaused,
			events: []string{"upgrade.paused"}, save: true},
		{name: "verdict on a paused upgrade: the reason grows", from: from(fixture{verdicts: true}, done("n1"), control(events.ControlPause)), input: verdict("web", 0, "inconclusive"),
			phase: PhasePaused, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if !strings.Contains(u.Reason, "judged web inconclusive") || !strings.HasSuffix(u.Reason, "paused by operator") {
					t.Errorf("reason %q", u.Reason)
				}
			}},
		{name: "verdict nobody waits for", from: from(fixture{verdicts: true}, done("n1")), input: verdict("db", 0, "failing"), phase: PhaseRunning},
		{name: "verdict on another wave", from: from(fixture{verdicts: true}, done("n1")), input: verdict("web", 1, "failing"), phase: PhaseRunning},
		{name: "verdict timeout not reached", from: from(fixture{verdicts: true}, done("n1")), input: poll(4*time.Minute - time.Millisecond), phase: PhaseRunning},
		{name: "verdict timeout: paused", from: from(fixture{verdicts: true}, done("n1")), input: poll(4*time.Minute + time.Second), phase: PhasePaused,
			events: []string{"upgrade.paused"}, save: true},

		// migration phases
		{name: "expand first: no wave before it", from: withMigration.requested, input: planned(withMigration), phase: PhaseRunning,
			events: []string{"upgrade.planned", "upgrade.started", "migration.requested"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if u.Migrations[0].Expand != MigrationSent || u.Nodes[StepKey("n1", 0)].Status != NodePending {
					t.Errorf("expand %s, n1 %s: want the expand sent, no command", u.Migrations[0].Expand, u.Nodes[StepKey("n1", 0)].Status)
				}
			}},
		{name: "expand completed: the canary wave starts", from: from(withMigration), input: migrated(""), phase: PhaseRunning,
			events: []string{"node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if u.Migrations[0].SnapshotID != "snap-1" {
					t.Errorf("snapshot %q not kept", u.Migrations[0].SnapshotID)
				}
			}},
		{name: "expand failed, rollback: nothing ran, rolled back", from: from(withMigration), input: migrated("syntax error"), phase: PhaseRolledBack,
			events: []string{"rollback.completed", "upgrade.failed"}, save: true},
		{name: "expand failed, pause", from: from(fixture{failure: "pause", migration: migration}), input: migrated("syntax error"), phase: PhasePaused,
			events: []string{"upgrade.paused"}, save: true},
		{name: "no expand command: skipped", from: fixture{migration: migration, commands: commands}.requested, input: planned(fixture{migration: migration, commands: commands}),
			phase: PhaseRunning, events: []string{"upgrade.planned", "upgrade.started", "node.update.requested", "upgrade.wave.started"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if u.Migrations[0].Expand != MigrationSkipped {
					t.Errorf("expand %s, want skipped", u.Migrations[0].Expand)
				}
			}},
		{name: "last wave with a contract pending: waits at the barrier", from: from(withMigration, migrated(""), done("n1"), done("n2")), input: done("n3"), phase: PhaseRunning,
			events: []string{"upgrade.wave.completed"}, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if barrierWaits(u) == nil {
					t.Error("no contract waits at the barrier")
				}
			}},
		{name: "barrier behind: says what it waits for", from: from(withMigration, migrated(""), done("n1"), done("n2"), done("n3")), input: barrierAt(time.Minute, "web:v1"),
			phase: PhaseRunning, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				if !strings.Contains(u.Barrier, "n1/web-n1 runs web:v1") || !u.BarrierSince.Equal(at(time.Minute)) {
					t.Errorf("barrier %q since %v", u.Barrier, u.BarrierSince)
				}
			}},
		{name: "barrier still behind, nothing new: no save", from: from(withMigration, migrated(""), done("n1"), done("n2"), done("n3"), barrierAt(time.Minute, "web:v1")),
			input: barrierAt(2*time.Minute, "web:v1"), phase: PhaseRunning},
		{name: "barrier timeout: paused", from: from(withMigration, migrated(""), done("n1"), done("n2"), done("n3"), barrierAt(time.Minute, "web:v1")),
			input: barrierAt(4*time.Minute, "web:v1"), phase: PhasePaused, events: []string{"upgrade.paused"}, save: true},
		{name: "barrier reached: the contract goes out", from: from(withMigration, migrated(""), everyWave[0], everyWave[1], everyWave[2]), input: barrierAt(time.Minute, "web:v2"),
			phase: PhaseRunning, events: []string{"migration.requested"}, save: true,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				if r, _ := events.DataAs[events.MigrationRequested](d.events[0]); r.Phase != "contract" || r.TargetVersion != 3 {
					t.Errorf("request %+v: want contract to 3", r)
				}
			}},
		{name: "barrier reached with a pause requested: paused", from: from(withMigration, migrated(""), done("n1"), done("n2"), done("n3"), control(events.ControlPause)),
			input: barrierAt(time.Minute, "web:v2"), phase: PhasePaused, events: []string{"upgrade.paused"}, save: true},
		{name: "contract completed: the upgrade completes", from: from(withMigration, migrated(""), done("n1"), done("n2"), done("n3"), barrierAt(time.Minute, "web:v2")),
			input: migrated(""), phase: PhaseCompleted, events: []string{"upgrade.completed"}, save: true},
		{name: "contract failed: nodes, then the database, go back", from: from(withMigration, migrated(""), done("n1"), done("n2"), done("n3"), barrierAt(time.Minute, "web:v2")),
			input: migrated("lock timeout"), phase: PhaseRollingBack, events: []string{"node.update.requested"}, save: true},
		{name: "after the nodes, the database goes back", from: from(withMigration, migrated(""), done("n1"), done("n2"), failed("n3"), reverted(""), reverted("")),
			input: reverted(""), phase: PhaseRollingBack, events: []string{"migration.rollback.requested"}, save: true,
			check: func(t *testing.T, _ *Upgrade, d decision) {
				if r, _ := events.DataAs[events.MigrationRollbackRequested](d.events[0]); r.ToVersion != 1 || r.SnapshotID != "snap-1" {
					t.Errorf("request %+v: want version 1 from snap-1", r)
				}
			}},
		{name: "database back: rolled back", from: from(withMigration, migrated(""), done("n1"), done("n2"), failed("n3"), reverted(""), reverted(""), reverted("")),
			input: migrated(""), phase: PhaseRolledBack, events: []string{"rollback.completed", "upgrade.failed"}, save: true},
		{name: "database fails to go back: paused", from: from(withMigration, migrated(""), done("n1"), done("n2"), failed("n3"), reverted(""), reverted(""), reverted("")),
			input: migrated("no snapshot"), phase: PhasePaused, events: []string{"rollback.completed", "upgrade.paused"}, save: true},
		{name: "commands after the barrier run one by one", from: from(fixture{migration: migration, commands: commands}, done("n1"), done("n2"), done("n3"), barrierAt(time.Minute, "web:v2")),
			input: migrated(""), phase: PhaseRunning, save: true,
			check: func(t *testing.T, u *Upgrade, _ decision) {
				m := u.Migrations[0]
				if m.PostRoll != 1 || m.Contract != MigrationPending {
					t.Fatalf("post roll %d, contract %s: want step 1 pending", m.PostRoll, m.Contract)
				}
				d := barrierAt(2*time.Minute, "web:v2")(u)
				if r, _ := events.DataAs[events.MigrationRequested](d.events[0]); r.Command == nil || !r.Command.Repeat || r.Phase != "migrate" {
					t.Errorf("second step %+v: want the online data migration", r)
				}
			}},
		{name: "stale migration answer changes nothing", from: from(withMigration), input: func(u *Upgrade) decision {
			return testMachine.migrationResult(cause("migration"), u, migrationAnswer{Request: "old"}, t0)
		}, phase: PhaseRunning},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			u := r.from()
			d := r.input(u)
			if u.Phase != r.phase {
				t.Errorf("phase %s (%s), want %s", u.Phase, u.Reason, r.phase)
			}
			var got []string
			for _, e := range d.events {
				got = append(got, strings.TrimPrefix(e.Type(), "dev.cutover."))
			}
			if !slices.Equal(got, r.events) {
				t.Errorf("events %q, want %q", got, r.events)
			}
			if d.save != r.save {
				t.Errorf("save %v, want %v", d.save, r.save)
			}
			if r.check != nil {
				r.check(t, u, d)
			}
		})
	}
}

// answerSays checks the decision's last event: the answer to an operator.
func answerSays(accepted bool, text string) func(t *testing.T, u *Upgrade, d decision) {
	return func(t *testing.T, u *Upgrade, d decision) {
		t.Helper()
		a, err := events.DataAs[events.UpgradeControlAnswered](d.events[len(d.events)-1])
		if err != nil || a.Accepted != accepted || !strings.Contains(a.Reason, text) || a.Phase != u.Phase {
			t.Errorf("answer %+v (%v): want accepted=%v saying %q in phase %s", a, err, accepted, text, u.Phase)
		}
	}
}
