package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	cloudevent "github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// verifySteps makes the store check every save for steps changed in place
// (see Upgrade.edit); the package's tests set it.
var verifySteps bool

// Planner turns upgrade requests into plans and drives them wave by wave.
type Planner struct {
	cfg      Config
	byType   map[string]events.Handler // handlers(), built once
	js       jetstream.JetStream
	pub      *events.Publisher
	store    *store
	nodes    jetstream.KeyValue
	locks    jetstream.KeyValue
	consumer *events.Consumer
	log      *slog.Logger
	stop     context.CancelFunc
	done     chan struct{}

	// leading says this instance holds the lease and runs the consumer.
	leading atomic.Bool
	lease   lease
	// runStop and runDone own the lease goroutine.
	runStop context.CancelFunc
	runDone chan struct{}
}

// New returns a Planner on js. The stream and buckets must exist (events.Setup).
func New(ctx context.Context, cfg Config, js jetstream.JetStream) (*Planner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Planner{cfg: cfg, js: js, pub: events.NewPublisher(js), log: cfg.Logger.With("service", "planner")}
	for name, dst := range map[string]*jetstream.KeyValue{events.BucketNodes: &p.nodes, events.BucketLocks: &p.locks} {
		kv, err := js.KeyValue(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("open bucket %s: %w (run events.Setup first)", name, err)
		}
		*dst = kv
	}
	kv, err := js.KeyValue(ctx, events.BucketUpgrades)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", events.BucketUpgrades, err)
	}
	p.store = &store{kv: kv, verify: verifySteps}
	return p, nil
}

// lead publishes what earlier runs decided but did not publish, then starts
// the durable consumer and the deadline watcher. Events that arrived while
// no planner led wait in the stream and are handled in order.
func (p *Planner) lead(ctx context.Context) error {
	p.store.reset() // another leader may have written since this one last led
	ids, err := p.store.ids(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		u, rev, err := p.store.get(ctx, id)
		if err != nil {
			return err
		}
		if len(u.Outbox) > 0 || len(u.pending) > 0 {
			p.log.Info("resuming upgrade: publishing pending events", "upgrade", id, "events", len(u.Outbox), "steps", len(u.pending))
			if _, err := p.flush(ctx, u, rev); err != nil {
				return err
			}
		}
		if u.Final() {
			p.store.forget(id, 0)
		}
	}
	processed, err := p.js.KeyValue(ctx, events.BucketProcessed)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", events.BucketProcessed, err)
	}
	p.byType = p.handlers()
	p.consumer, err = events.Consume(ctx, p.js, events.ConsumerConfig{
		Durable: "planner",
		// One filter for the whole stream, not one per subject the planner
		// reads: the server serves a consumer with several filters by
		// intersecting them with every subject in the stream, which at
		// thousands of nodes (three subjects each) cost more than the
		// planner's own work. Types drops the rest (commands, progress,
		// heartbeats) before any KV round trip.
		FilterSubjects: []string{events.SubjectAll},
		Service:        "planner",
		Processed:      processed,
		Types:          slices.Collect(maps.Keys(p.byType)),
		AckWait:        p.cfg.AckWait,
		Logger:         p.log,
	}, p.handle)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.stop, p.done = cancel, make(chan struct{})
	go p.watchDeadlines(wctx)
	p.leading.Store(true)
	return nil
}

// stepDown stops the consumer and the deadline watcher, letting the event
// in progress finish until ctx is done.
func (p *Planner) stepDown(ctx context.Context) error {
	if !p.leading.Swap(false) {
		return nil
	}
	var errs []error
	p.stop()
	select {
	case <-p.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("stop planner deadline watcher: %w", ctx.Err()))
	}
	if err := p.consumer.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	p.consumer = nil
	return errors.Join(errs...)
}

// Close stops the lease goroutine and, on the leader, the consumer (letting
// the event in progress finish until ctx is done), then releases the lease
// so a standby takes over at once.
func (p *Planner) Close(ctx context.Context) error {
	if p.runStop != nil {
		p.runStop()
		<-p.runDone
		p.runStop = nil
	}
	leading := p.leading.Load()
	err := p.stepDown(ctx)
	if leading {
		p.releaseLease(context.WithoutCancel(ctx))
	}
	return err
}

// watchDeadlines fails the steps of a wave that outlived the progress
// deadline. It checks a few times per deadline; a check that loses a
// compare-and-swap race with the consumer simply tries again next tick.
func (p *Planner) watchDeadlines(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(max(min(p.cfg.PollInterval, p.cfg.ProgressDeadline/4, p.cfg.DrainTimeout/4), 20*time.Millisecond))
	defer t.Stop()
	// Upgrades that can never change again are not read again: every tick
	// would otherwise decode the whole history of upgrades. A completed
	// upgrade stays checked, since a rollback request can reopen it, and a
	// rolled-back one, since cutover retry can.
	ended := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids, err := p.store.ids(ctx)
		if err != nil {
			continue
		}
		for _, id := range ids {
			if ended[id] {
				continue
			}
			// The record alone says whether to look further: reading a
			// finished upgrade's steps every tick would cost one read per step.
			phase, busy, err := p.store.phase(ctx, id)
			if err == nil && !busy && (phase == PhaseFailed || phase == PhaseAborted) {
				ended[id] = true
			}
			if err != nil || phase != PhaseRunning || busy {
				continue // gone, not running, or a handler is mid-commit
			}
			u, rev, err := p.store.get(ctx, id)
			if err != nil || u.Phase != PhaseRunning || len(u.Outbox) > 0 || len(u.pending) > 0 {
				continue
			}
			if u.Gate != nil && u.Rollback == nil {
				if err := p.expireGate(ctx, u, rev, time.Now()); err != nil && ctx.Err() == nil {
					p.log.Warn("check verdict timeout", "upgrade", id, "err", err)
				}
				continue // a wave waiting for verdicts has nothing in flight
			}
			changed, err := p.expire(ctx, u, rev, time.Now())
			if err != nil && ctx.Err() == nil {
				p.log.Warn("check progress deadline", "upgrade", id, "err", err)
			}
			if changed || err != nil {
				continue // the barrier is checked next tick, on fresh state
			}
			if err := p.checkBarrier(ctx, u, rev); err != nil && ctx.Err() == nil {
				p.log.Warn("check version barrier", "upgrade", id, "err", err)
			}
		}
	}
}

// expire fails the steps of an upgrade's wave that outlived their deadline:
// a command without an answer within the progress deadline, a drain without
// dev.cutover.node.drained within the drain timeout. An undrained node gets
// no command at all, so its workload hosts are never touched.
// It reports whether it changed the upgrade.
func (p *Planner) expire(ctx context.Context, u *Upgrade, rev uint64, now time.Time) (bool, error) {
	var cause events.Event
	expired := false
	for _, key := range u.waveNodes(u.Wave) {
		np := u.Nodes[key]
		var reason string
		switch {
		case np.Status == NodeSent && now.Sub(latest(np.SentAt, u.WaveStartedAt)) >= p.cfg.ProgressDeadline:
			reason = fmt.Sprintf("%s: no answer to command %s within the progress deadline of %v; check that its node-updater runs (cutover-nodes KV)", np.Node, np.CommandID, p.cfg.ProgressDeadline)
			cause = expiredCause(np.CommandID, u.ID)
		case np.Status == NodeDraining && now.Sub(np.DrainRequestedAt) >= p.cfg.DrainTimeout:
			reason = fmt.Sprintf("%s: not drained within %v (no dev.cutover.node.drained answering %s); its workload hosts were not touched; evacuate the node, then resume or request the upgrade again", np.Node, p.cfg.DrainTimeout, np.DrainID)
			cause = expiredCause(np.DrainID, u.ID)
		default:
			continue
		}
		np = u.edit(key)
		np.Status, np.Error = NodeFailed, reason
		expired = true
	}
	if !expired {
		return false, nil
	}
	p.log.Warn("wave missed its deadline", "upgrade", u.ID, "wave", u.Wave)
	return true, p.commit(ctx, u, rev, p.advance(cause, u)...)
}

// expiredCause stands for a request that got no answer: the cause of what follows.
func expiredCause(requestID, upgradeID string) events.Event {
	cause := cloudevent.New()
	cause.SetID(requestID)
	cause.SetExtension(events.ExtUpgradeID, upgradeID)
	return cause
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

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
	log := p.log.With("upgrade", id)
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
	if req.FailureAction == "" {
		req.FailureAction = "rollback"
	}
	u := &Upgrade{
		ID: id, Release: req.Release, FailureAction: req.FailureAction, Phase: PhaseRunning,
		// The planner's own clock, not the request's time attribute: a
		// client may leave time out (0001-01-01) or run ahead or behind,
		// and the duration reported at the end counts from here.
		RequestedAt: time.Now().UTC(), Nodes: map[string]*NodeProgress{}, WaitForVerdicts: req.WaitForVerdicts,
		PauseAfterCanary: req.PauseAfterCanary,
	}
	if req.WaitForVerdicts {
		u.VerdictTimeout = p.cfg.VerdictTimeout
		if req.VerdictTimeoutMs > 0 {
			u.VerdictTimeout = time.Duration(req.VerdictTimeoutMs) * time.Millisecond
		}
	}
	refuse := func(reason string) error {
		log.Warn("upgrade refused", "reason", reason)
		u.Phase, u.Reason = PhaseFailed, reason
		return p.commit(ctx, u, 0, p.event(e, u, events.UpgradeFailed{Reason: reason, Wave: -1}))
	}
	if holder, err := p.lock(ctx, id); err != nil {
		return err
	} else if holder != "" {
		return refuse(fmt.Sprintf("upgrade %s is still running in scope %q; wait for it to finish (cutover status %s)", holder, p.cfg.Scope, holder))
	}
	fleet, err := p.fleet(ctx)
	if err != nil {
		return err
	}
	plan, err := Compute(req, fleet, p.cfg.Inventory)
	if err != nil {
		p.unlock(ctx, id)
		return refuse(err.Error())
	}
	u.Plan = plan.UpgradePlanned
	for _, w := range plan.Waves {
		for _, n := range w.Nodes {
			key := StepKey(n, w.Index)
			u.Nodes[key] = &NodeProgress{Node: n, Wave: w.Index, Status: NodePending, Targets: plan.Targets[key], Drain: plan.Drain[key]}
		}
	}
	for _, m := range plan.Migrations {
		u.Migrations = append(u.Migrations, &m)
	}
	log.Info("upgrade planned", "release", req.Release.Name, "changes", len(plan.Changes), "waves", len(plan.Waves))
	out := p.planned(e, u, plan.UpgradePlanned)
	out = append(out, p.event(e, u, events.UpgradeStarted{Waves: len(plan.Waves)}))
	out = append(out, p.advance(e, u)...)
	return p.commit(ctx, u, 0, out...)
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
	cause := events.CausationID(e)
	switch {
	case u.Rollback != nil && u.Rollback.Current == node && u.Rollback.CommandID == cause:
		if failure != "" {
			u.Rollback.Error = failure
		} else {
			u.Rollback.Done = append(u.Rollback.Done, node)
		}
		u.Rollback.Current, u.Rollback.CommandID = "", ""
	case u.step(node, cause) != "":
		np := u.edit(u.step(node, cause))
		np.Results = results
		if failure != "" {
			np.Status, np.Error = NodeFailed, failure
		} else {
			np.Status = NodeCompleted
		}
	default:
		return nil // stale or repeated: it changes nothing
	}
	return p.commit(ctx, u, rev, p.advance(e, u)...)
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
	if u.Rollback != nil {
		return p.refuse(ctx, e, u, "rollback", "it is already rolling back ("+u.Rollback.Reason+")")
	}
	if u.Phase != PhaseRunning && u.Phase != PhaseCompleted && u.Phase != PhasePaused {
		return p.refuse(ctx, e, u, "rollback", "it is "+u.Phase+": nothing to roll back")
	}
	d, err := events.DataAs[events.RollbackRequested](e)
	if err != nil {
		return err
	}
	u.Rollback = &RollbackProgress{Reason: d.Reason, Queue: []string{}, Done: []string{}}
	if u.Phase == PhaseCompleted || u.Phase == PhasePaused {
		u.Phase = PhaseRunning // re-enter the state machine to roll back
	}
	u.AwaitingPromotion = false
	out := p.advance(e, u)
	out = append(out, p.answer(e, u, "rollback", true, "rolling back the nodes updated so far, latest first"))
	return p.commit(ctx, u, rev, out...)
}

// advance moves an upgrade as far as its state allows and returns the events
// that say so. It only changes u; commit persists u and the events together.
//
// Order: expand migrations, then the waves (a drain first for steps that
// restart a workload host), then contract migrations once the version
// barrier holds (see checkBarrier), then completion. A requested pause takes
// effect where a new step would start; a requested rollback waits for the
// steps in flight, then undoes what changed.
func (p *Planner) advance(cause events.Event, u *Upgrade) []events.Event {
	var out []events.Event
	for {
		switch {
		case u.Phase == PhaseRollingBack:
			return append(out, p.advanceRollback(cause, u)...)
		case u.Phase != PhaseRunning:
			return out
		}
		if done, evs := p.advanceExpand(cause, u); !done {
			return append(out, evs...)
		} else if u.Phase != PhaseRunning {
			out = append(out, evs...)
			continue
		}
		nodes := u.waveNodes(u.Wave)
		if len(nodes) == 0 { // no waves left, or none at all
			if u.Rollback != nil {
				p.startRollback(u, u.Rollback.Reason)
				continue
			}
			if done, evs := p.advanceContract(cause, u); !done {
				return append(out, evs...)
			} else if u.Phase != PhaseRunning {
				out = append(out, evs...)
				continue
			}
			u.Phase = PhaseCompleted
			replaced, unchanged := u.counts()
			return append(out, p.event(cause, u, events.UpgradeCompleted{
				Release: u.Release.Name, Replaced: replaced, Unchanged: unchanged + u.Plan.Unchanged,
				DurationMs: max(0, time.Since(u.RequestedAt).Milliseconds()), // never negative if the clock steps back
			}))
		}
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
				return append(out, p.pause(cause, u, "paused by operator"))
			}
			if fresh && u.Gate != nil {
				return out // wait for the verdicts on the wave before (onVerdict)
			}
			now := time.Now().UTC()
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
					for _, t := range np.Targets {
						hosts = append(hosts, t.Container)
					}
					req := events.MustNew(events.Source("planner", ""), events.NodeDrainRequested{Wave: u.Wave, Containers: hosts, TimeoutMs: p.cfg.DrainTimeout.Milliseconds()},
						events.WithUpgrade(u.ID), events.WithNode(np.Node), events.CausedBy(cause))
					np.Status, np.DrainID, np.DrainRequestedAt = NodeDraining, req.ID(), now
					out = append(out, req)
					continue
				}
				cmd := p.command(cause, u, np.Node, np.Targets, false, np.Drained)
				np.Status, np.CommandID, np.SentAt = NodeSent, cmd.ID(), now
				out = append(out, cmd)
			}
			if fresh {
				u.WaveStartedAt = now
				out = append(out, p.event(cause, u, events.WaveStarted{Wave: u.Wave, Nodes: names}))
			}
			return out
		}
		if busy > 0 {
			return out // wait for the wave's nodes
		}
		if u.Rollback != nil {
			p.startRollback(u, u.Rollback.Reason)
			continue
		}
		if len(failed) > 0 && u.FailureAction != "continue" {
			reason := fmt.Sprintf("wave %d failed: %s", u.Wave, failed[0])
			if u.FailureAction == "pause" {
				return append(out, p.pause(cause, u, reason))
			}
			p.startRollback(u, reason)
			continue
		}
		replaced, unchanged := 0, 0
		for _, n := range nodes {
			for _, r := range u.Nodes[n].Results {
				switch r.Result {
				case events.ResultReplaced:
					replaced++
				case events.ResultUnchanged:
					unchanged++
				}
			}
		}
		var names []string
		for _, n := range nodes {
			names = append(names, u.Nodes[n].Node)
		}
		out = append(out, p.event(cause, u, events.WaveCompleted{Wave: u.Wave, Nodes: names, Replaced: replaced, Unchanged: unchanged}))
		u.Gate = u.gateAfter(u.Wave)
		u.Wave++
		if u.Wave == 1 && u.PauseAfterCanary && !u.Promoted && len(u.waveNodes(1)) > 0 {
			// Argo Rollouts' manual promotion: the canary runs the release;
			// a person looks before the rest of the fleet follows.
			u.AwaitingPromotion = true
			return append(out, p.pause(cause, u, fmt.Sprintf("canary wave 0 completed (%s); waiting for cutover promote %s", strings.Join(names, ", "), u.ID)))
		}
	}
}

// pause stops the upgrade where it stands; it keeps the scope lock.
func (p *Planner) pause(cause events.Event, u *Upgrade, reason string) events.Event {
	u.Phase, u.Reason, u.PauseRequested = PhasePaused, reason, false
	return p.event(cause, u, events.UpgradePaused{Reason: reason, Wave: u.Wave})
}

// startRollback queues the nodes that changed, latest wave first.
func (p *Planner) startRollback(u *Upgrade, reason string) {
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
	p.log.Info("rolling back", "upgrade", u.ID, "reason", reason, "nodes", queue)
}

func (p *Planner) advanceRollback(cause events.Event, u *Upgrade) []events.Event {
	rb := u.Rollback
	if rb.Current != "" {
		return nil // wait for the node in progress
	}
	if rb.Error != "" {
		// A rollback that fails stops and reports; it never loops.
		u.Phase, u.Reason = PhasePaused, "rollback failed: "+rb.Error
		return []events.Event{
			p.event(cause, u, events.RollbackCompleted{Result: "failed", Nodes: rb.Done, Reason: rb.Error}),
			p.event(cause, u, events.UpgradePaused{Reason: u.Reason, Wave: u.Wave}),
		}
	}
	if len(rb.Queue) == 0 {
		if done, evs := p.advanceMigrationRollback(cause, u); !done {
			return evs
		}
		if rb.Error != "" {
			return p.advanceRollback(cause, u)
		}
		u.Phase, u.Reason = PhaseRolledBack, rb.Reason
		return []events.Event{
			p.event(cause, u, events.RollbackCompleted{Result: "completed", Nodes: rb.Done, Reason: rb.Reason}),
			p.event(cause, u, events.UpgradeFailed{Reason: "rolled back: " + rb.Reason, Wave: u.Wave}),
		}
	}
	key := rb.Queue[0]
	rb.Queue = rb.Queue[1:]
	node := u.Nodes[key].Node
	cmd := p.command(cause, u, node, rollbackTargets(u.Nodes[key]), true, u.Nodes[key].Drained)
	rb.Current, rb.CommandID = node, cmd.ID()
	return []events.Event{cmd}
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

func (p *Planner) event(cause events.Event, u *Upgrade, d events.Data) events.Event {
	return events.MustNew(events.Source("planner", ""), d, events.WithUpgrade(u.ID), events.CausedBy(cause))
}

func (p *Planner) command(cause events.Event, u *Upgrade, node string, targets []events.ContainerTarget, rollback, drained bool) events.Event {
	return events.MustNew(events.Source("planner", ""), events.NodeUpdateRequested{Wave: u.Wave, Containers: targets, Rollback: rollback, Drained: drained},
		events.WithUpgrade(u.ID), events.WithNode(node), events.CausedBy(cause))
}

// commit saves u with the events in its outbox, then publishes them. The
// scope lock is released by flush once a final state's events are out.
func (p *Planner) commit(ctx context.Context, u *Upgrade, rev uint64, out ...events.Event) error {
	for _, e := range out {
		raw, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode %s for upgrade %s: %w", e.Type(), u.ID, err)
		}
		u.Outbox = append(u.Outbox, raw)
	}
	rev, err := p.store.put(ctx, u, rev)
	if err != nil {
		return err
	}
	_, err = p.flush(ctx, u, rev)
	return err
}

// flush writes an upgrade's pending steps to their keys and publishes its
// outbox in order, then saves it without them and returns its revision.
func (p *Planner) flush(ctx context.Context, u *Upgrade, rev uint64) (uint64, error) {
	if len(u.Outbox) == 0 && len(u.pending) == 0 {
		return rev, nil
	}
	if err := p.store.writeSteps(ctx, u); err != nil {
		return 0, err
	}
	for _, raw := range u.Outbox {
		var e events.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return 0, fmt.Errorf("decode outbox of upgrade %s: %w", u.ID, err)
		}
		if err := p.pub.Publish(ctx, e); err != nil {
			return 0, err
		}
	}
	journal := u.journal
	u.Outbox, u.pending, u.journal = nil, nil, nil
	rev, err := p.store.put(ctx, u, rev)
	if err != nil {
		return 0, err
	}
	p.store.purge(ctx, journal)
	if u.Final() {
		p.unlock(ctx, u.ID)
		p.store.forget(u.ID, 0) // a rollback request reopening it reads it again
	}
	return rev, nil
}

// planParts bounds the changes one upgrade.planned event carries; a larger
// plan goes out in parts, so no event outgrows NATS's max_payload.
const planParts = 1000

// planned returns the events that carry a plan: one, or for a large plan
// several parts numbered from 1, the first with the waves.
func (p *Planner) planned(cause events.Event, u *Upgrade, plan events.UpgradePlanned) []events.Event {
	if len(plan.Changes) <= planParts {
		return []events.Event{p.event(cause, u, plan)}
	}
	var out []events.Event
	parts := (len(plan.Changes) + planParts - 1) / planParts
	for i := range parts {
		part := events.UpgradePlanned{Release: plan.Release, Changes: plan.Changes[i*planParts : min((i+1)*planParts, len(plan.Changes))], Unchanged: plan.Unchanged, Waves: []events.PlannedWave{}, Part: i + 1, Parts: parts}
		if i == 0 {
			part.Waves = plan.Waves
		}
		out = append(out, p.event(cause, u, part))
	}
	return out
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

// lock takes the scope's upgrade lock for id. It returns the id of another
// upgrade that holds it, or "" when id holds it now.
func (p *Planner) lock(ctx context.Context, id string) (string, error) {
	key := "upgrade." + p.cfg.Scope
	for range 3 {
		_, err := p.locks.Create(ctx, key, []byte(id))
		if err == nil {
			return "", nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", fmt.Errorf("take upgrade lock %s: %w", key, err)
		}
		entry, err := p.locks.Get(ctx, key)
		if events.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read upgrade lock %s: %w", key, err)
		}
		holder := string(entry.Value())
		if holder == id {
			return "", nil
		}
		// A holder whose upgrade is final (or unknown) left a stale lock.
		if hu, _, err := p.store.get(ctx, holder); err == nil && !hu.Final() {
			return holder, nil
		}
		if _, err := p.locks.Update(ctx, key, []byte(id), entry.Revision()); err == nil {
			return "", nil
		}
	}
	return "", fmt.Errorf("take upgrade lock %s: contended; retrying", key)
}

func (p *Planner) unlock(ctx context.Context, id string) {
	key := "upgrade." + p.cfg.Scope
	entry, err := p.locks.Get(ctx, key)
	if err != nil || string(entry.Value()) != id {
		return
	}
	if err := p.locks.Delete(ctx, key, jetstream.LastRevision(entry.Revision())); err != nil {
		p.log.Warn("release upgrade lock", "upgrade", id, "err", err)
	}
}

// fleet reads every live node's inventory.
func (p *Planner) fleet(ctx context.Context) ([]events.NodeInventory, error) {
	return readFleet(ctx, p.nodes, p.log)
}

// Fleet reads every live node's inventory from the cutover-nodes bucket,
// sorted by node: the fleet the planner plans against (cutover plan
// without --inventory, cutover nodes).
func Fleet(ctx context.Context, js jetstream.JetStream) ([]events.NodeInventory, error) {
	kv, err := js.KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w (is cutover dev or a planner running on this NATS?)", events.BucketNodes, err)
	}
	return readFleet(ctx, kv, slog.New(slog.DiscardHandler))
}

func readFleet(ctx context.Context, nodes jetstream.KeyValue, log *slog.Logger) ([]events.NodeInventory, error) {
	lister, err := nodes.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]events.NodeInventory, 0, len(keys))
	for _, k := range keys {
		entry, err := nodes.Get(ctx, k)
		if events.IsNotFound(err) {
			continue // expired between list and get: the node is lost
		}
		if err != nil {
			return nil, fmt.Errorf("read node %s: %w", k, err)
		}
		var inv events.NodeInventory
		if err := json.Unmarshal(entry.Value(), &inv); err != nil {
			log.Warn("ignoring unreadable node inventory", "node", k, "err", err)
			continue
		}
		out = append(out, inv)
	}
	return out, nil
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
