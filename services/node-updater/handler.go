package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/redact"
)

// Steps named in NodeUpdateFailed and ContainerReverted events.
const (
	StepLookup     = "lookup"
	StepDrainCheck = "drain-check"
	StepPull       = "pull"
	StepStop       = "stop"
	StepRename     = "rename"
	StepCreate     = "create"
	StepStart      = "start"
	StepHealth     = "health"
	// StepSwap is the start-first step where the new container takes the
	// name over from the old one.
	StepSwap = "swap"
	// StepDrain is the wait for a load balancer's drain acknowledgement.
	StepDrain = "drain"
	// StepRollback is the resolution of a rollback's previous image.
	StepRollback = "rollback"
	// StepRecovery names, in a ContainerReverted event, the start-up
	// recovery of a replacement a crash interrupted.
	StepRecovery = "recovery"
)

// Strategies of a ContainerTarget.
const (
	StrategyStopFirst  = "stop-first"
	StrategyStartFirst = "start-first"
)

// lastLogLines is how many log lines of a failed container a
// ContainerReverted event carries.
const lastLogLines = 20

// handle runs one command. It returns nil once a completed or failed event
// is published: a failure is reported by that event, not by a redelivery.
// It returns an error only when nothing has changed yet and a retry may
// succeed (the engine is unreachable, the updater is shutting down), or
// when the updater shuts down before the bus took the final event (the
// redelivered command then resolves as unchanged and publishes it again).
// While the bus is down it waits for it: the final event and the progress
// events before it are held in the outbox and published in order.
func (u *Updater) handle(ctx context.Context, e events.Event) error {
	if e.Type() != events.TypeNodeUpdateRequested {
		return events.Permanent(fmt.Errorf("node-updater accepts only %s on %s, not %s",
			events.TypeNodeUpdateRequested, events.NodeCmdSubject(u.cfg.Node), e.Type()))
	}
	cmd, err := events.DataAs[events.NodeUpdateRequested](e)
	if err != nil {
		return err
	}
	run := &commandRun{
		u:       u,
		cause:   e,
		cmd:     cmd,
		log:     u.log.With("command", e.ID(), "wave", cmd.Wave, "rollback", cmd.Rollback),
		results: []events.ContainerResult{},
	}
	run.log.Info("node update requested", "containers", len(cmd.Containers))
	final, err := run.execute(ctx)

	// The inventory is refreshed before the final event, so whoever reacts
	// to that event reads the node as the command left it; also after a
	// cancellation half-way.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if ierr := u.publishInventory(ictx); ierr != nil {
		run.log.Warn("publish inventory after command", "err", ierr)
	}
	if final != nil {
		if perr := run.conclude(ctx, final); perr != nil {
			return errors.Join(err, fmt.Errorf("report outcome of command %s: %w", e.ID(), perr))
		}
	}
	return err
}

// commandRun is the state of one command being handled.
type commandRun struct {
	u       *Updater
	cause   events.Event
	cmd     events.NodeUpdateRequested
	log     *slog.Logger
	results []events.ContainerResult
	// changed is set once a container was touched (stopped); from then on
	// the outcome is reported by an event rather than by a redelivery.
	changed bool
}

// execute runs the command and returns its final event, a completed or
// failed one, for handle to publish; and an error for the consume helper
// (Permanent to reject the command, anything else to retry it).
func (r *commandRun) execute(ctx context.Context) (events.Data, error) {
	// Check every container before touching any: an unknown container or a
	// workload host on an undrained node refuses the whole command.
	targets := slices.Clone(r.cmd.Containers)
	for i, t := range targets {
		if err := r.u.settle(ctx, t.Container); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrUnavailable) {
				return nil, err
			}
			return r.failed(t.Container, StepLookup, err), nil
		}
		c, err := r.u.lookup(ctx, t.Container)
		switch {
		case errors.Is(err, ErrNotFound):
			return r.failed(t.Container, StepLookup, err), nil
		case err != nil:
			return nil, fmt.Errorf("look up container %s: %w", t.Container, err)
		}
		if c.WorkloadHost() && !r.cmd.Drained {
			err := fmt.Errorf("container %s hosts workloads and node %s is not drained; drain the node first, then send the command with drained=true", t.Container, r.u.cfg.Node)
			return r.failed(t.Container, StepDrainCheck, err), events.Permanent(err)
		}
		if err := r.resolveImage(&targets[i], c); err != nil {
			return r.failed(t.Container, StepRollback, err), nil
		}
	}

	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res, fail, err := r.updateOne(ctx, t)
		if err != nil {
			return nil, err
		}
		if res.Container != "" {
			r.results = append(r.results, res)
		}
		if fail != nil {
			return r.failed(t.Container, fail.step, fail.err), nil
		}
	}
	r.log.Info("node update completed", "results", len(r.results))
	return events.NodeUpdateCompleted{Wave: r.cmd.Wave, Rollback: r.cmd.Rollback, Results: r.results}, nil
}

// resolveImage fills in the image of a rollback target that names none: the
// image the container ran before its last replacement. It refuses when none
// is recorded, and when that image is the one running (rolling back to it
// would bounce between two images). A replacement recovery finished for the
// container resolves to what runs, so a rollback command redelivered after a
// crash completes instead of going back again.
func (r *commandRun) resolveImage(t *events.ContainerTarget, c Container) error {
	if t.Image != "" {
		return nil
	}
	if !r.cmd.Rollback {
		return fmt.Errorf("container %s: the target image is empty; name an image (only a rollback command may leave it empty)", t.Container)
	}
	if rec, ok := r.u.peekRecovered(t.Container); ok && rec.toImageID == c.ImageID {
		t.Image = c.Image
		return nil
	}
	prev := r.u.previousImage(t.Container)
	switch {
	case prev == "":
		return fmt.Errorf("roll back container %s: node %s has no previous image recorded for it (it was never replaced by cutover, or its record was lost); send the rollback with the image to go back to", t.Container, r.u.cfg.Node)
	case prev == c.Image:
		return fmt.Errorf("roll back container %s: its previous image %s is the one it runs; refusing to replace it with itself (no revert ping-pong)", t.Container, prev)
	}
	t.Image = prev
	return nil
}

// failure is a step that failed and stops the command.
type failure struct {
	step string
	err  error
}

// failed returns the command's NodeUpdateFailed event.
func (r *commandRun) failed(container, step string, err error) events.NodeUpdateFailed {
	// An engine's error may name a registry URL with its password.
	reason := redact.Line(err.Error(), nil)
	r.log.Warn("node update failed", "container", container, "step", step, "err", reason)
	return events.NodeUpdateFailed{
		Wave:      r.cmd.Wave,
		Rollback:  r.cmd.Rollback,
		Container: container,
		Step:      step,
		Error:     reason,
		Results:   r.results,
	}
}

// publish queues a status event caused by the command in the outbox, which
// publishes the node's events in order and holds them while the bus is
// down. It does not use ctx's cancellation: a replacement that was
// cancelled half-way still reports what it did.
func (r *commandRun) publish(ctx context.Context, data events.Data) (<-chan struct{}, error) {
	e, err := events.New(events.Source(serviceName, r.u.cfg.Node), data, events.CausedBy(r.cause), events.WithNode(r.u.cfg.Node))
	if err != nil {
		return nil, err
	}
	return r.u.out.add(context.WithoutCancel(ctx), e)
}

// report queues a progress event; it never waits for the bus, so a
// replacement under way goes on while the bus is down, and its events are
// published once the bus is back.
func (r *commandRun) report(ctx context.Context, data events.Data) {
	if _, err := r.publish(ctx, data); err != nil {
		r.log.Warn("queue progress event", "type", data.EventType(), "err", err)
	}
}

// conclude queues the command's final event and waits until the bus has
// stored it and every event before it, so the command is acked only once
// its whole record is out: a crash before that redelivers the command,
// which re-derives its outcome. It gives up when ctx ends (shutting down).
func (r *commandRun) conclude(ctx context.Context, data events.Data) error {
	done, err := r.publish(ctx, data)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s not yet published (held until the bus takes it): %w", data.EventType(), ctx.Err())
	}
}

// pullProgressEvery throttles dev.cutover.container.pulling events.
const pullProgressEvery = 500 * time.Millisecond

// pull pulls a target's image, trying again after a failure with capped
// exponential backoff (Config.PullAttempts, PullBackoff, PullBackoffMax):
// a registry that refused a connection or answered 503 is often back
// seconds later, and failing the wave for it would roll the whole upgrade
// back. An image the registry does not have, an engine that is down (the
// command is redelivered) and the end of ctx stop at once, and no wait runs
// past ctx's deadline.
func (r *commandRun) pull(ctx context.Context, t events.ContainerTarget) (string, error) {
	cfg := r.u.cfg
	wait := cfg.PullBackoff
	for attempt := 1; ; attempt++ {
		id, err := r.pullOnce(ctx, t)
		if err == nil || attempt >= cfg.PullAttempts || ctx.Err() != nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return id, err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return "", fmt.Errorf("%w (attempt %d; no time left before the command's deadline to try again)", err, attempt)
		}
		image, reason := redact.Line(t.Image, nil), redact.Line(err.Error(), nil)
		r.log.Warn("pull failed; trying again", "container", t.Container, "image", image, "attempt", attempt, "of", cfg.PullAttempts, "in", wait, "err", reason)
		if retryReported(attempt) {
			r.report(ctx, events.ContainerPullRetrying{
				Container: t.Container, Image: image, Attempt: attempt, Attempts: cfg.PullAttempts,
				Error: reason, RetryInMs: wait.Milliseconds(),
			})
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(wait):
		}
		wait = min(2*wait, cfg.PullBackoffMax)
	}
}

// retryReported says whether the retry after failed attempt n is
// published as a dev.cutover.container.pull.retrying event: the first four,
// then those after attempts 8, 16, 32... Attempts are bounded by
// Config.PullAttempts and the command's deadline, but a deployment may set
// many attempts with a short backoff; this keeps a pull failing for a whole
// deadline to a number of events logarithmic in its attempts, so it cannot
// crowd the node's other status events out of the stream's per-subject
// limit. Every retry is still logged.
func retryReported(n int) bool {
	return n <= 4 || n&(n-1) == 0
}

// pullOnce pulls a target's image once, publishing its progress when the
// runtime reports it: the first layer finished, then at most every
// pullProgressEvery.
func (r *commandRun) pullOnce(ctx context.Context, t events.ContainerTarget) (string, error) {
	pp, ok := r.u.rt.(progressPuller)
	if !ok {
		return r.u.rt.Pull(ctx, t.Image)
	}
	var last time.Time
	return pp.PullWithProgress(ctx, t.Image, func(p PullProgress) {
		if p.LayersDone == 0 || time.Since(last) < pullProgressEvery {
			return
		}
		last = time.Now()
		r.report(ctx, events.ContainerPulling{
			Container: t.Container, Image: t.Image, LayersDone: p.LayersDone, LayersTotal: p.LayersTotal,
			BytesDone: p.BytesDone, BytesTotal: p.BytesTotal,
		})
	})
}

// updateOne brings one container to its target. It returns the container's
// result (Container empty when there is none to report), a failure that
// ends the command, or an error for the handler to return.
func (r *commandRun) updateOne(ctx context.Context, t events.ContainerTarget) (events.ContainerResult, *failure, error) {
	log := r.log.With("container", t.Container, "image", t.Image)
	rec, recovered := r.u.takeRecovered(t.Container)

	c, err := r.u.lookup(ctx, t.Container)
	if err != nil {
		return r.transientOr(ctx, StepLookup, fmt.Errorf("look up container %s: %w", t.Container, err))
	}

	pullStart := time.Now()
	imageID, err := r.pull(ctx, t)
	if err != nil {
		return r.transientOr(ctx, StepPull, fmt.Errorf("pull %s: %w", t.Image, err))
	}
	r.u.stepDone(StepPull)
	r.report(ctx, events.ContainerPulled{
		Container: t.Container, Image: t.Image, ImageID: imageID,
		DurationMs: time.Since(pullStart).Milliseconds(),
	})

	if c.Running && c.ImageID == imageID && recovered && !rec.reverted && rec.toImageID == imageID {
		// A crash interrupted this command after the new container started;
		// recovery finished the replacement and reported it (caused by this
		// command when the container recorded it). Report the result.
		log.Info("recovery finished this replacement before the command came back")
		r.u.setPrevious(t.Container, rec.fromImage)
		if !rec.reported {
			r.report(ctx, events.ContainerReplaced{
				Container: t.Container, Service: c.Service(), Result: events.ResultReplaced,
				FromImage: rec.fromImage, ToImage: t.Image, FromImageID: rec.fromImageID, ToImageID: imageID,
				InterruptionMs: rec.outage.Milliseconds(), InterruptionUnknown: rec.unknown, Recovered: true,
			})
		}
		return events.ContainerResult{
			Container: t.Container, Result: events.ResultReplaced, FromImage: rec.fromImage, ToImage: t.Image,
			InterruptionMs: rec.outage.Milliseconds(), InterruptionUnknown: rec.unknown,
		}, nil, nil
	}
	if c.Running && c.ImageID == imageID {
		log.Info("container already runs the target image")
		r.report(ctx, events.ContainerReplaced{
			Container: t.Container, Service: c.Service(), Result: events.ResultUnchanged,
			FromImage: c.Image, ToImage: t.Image, FromImageID: c.ImageID, ToImageID: imageID,
		})
		return events.ContainerResult{Container: t.Container, Result: events.ResultUnchanged, FromImage: c.Image, ToImage: t.Image}, nil, nil
	}

	if c.AutoRemove {
		return events.ContainerResult{}, &failure{StepLookup, fmt.Errorf("container %s is created with auto-remove, so stopping it would delete it; recreate it without --rm to let cutover replace it", t.Container)}, nil
	}

	if err := r.drain(ctx, t, c); err != nil {
		if ctx.Err() != nil {
			return events.ContainerResult{}, nil, err
		}
		return events.ContainerResult{}, &failure{StepDrain, err}, nil
	}
	r.changed = true
	rep := &replacement{u: r.u, log: log, target: t, old: c, imageID: imageID, cause: r.cause}
	out := rep.run(ctx)
	if out.failed != nil {
		if out.reverted {
			r.report(ctx, events.ContainerReverted{
				Container: t.Container, Step: out.failed.step, Reason: out.failed.err.Error(),
				Image: t.Image, LastLogs: out.lastLogs,
			})
		}
		if ctx.Err() != nil {
			// Shutting down: the command is redelivered after the restart
			// and redoes the work from the reverted state.
			return events.ContainerResult{}, nil, fmt.Errorf("replace %s: %w", t.Container, ctx.Err())
		}
		res := events.ContainerResult{Container: t.Container, Result: events.ResultReverted, FromImage: c.Image, ToImage: t.Image}
		if !out.reverted {
			res = events.ContainerResult{}
		}
		return res, out.failed, nil
	}

	// A crash interrupted an earlier try of this command and recovery
	// reverted it: the outage that try caused counts too.
	interruption, unknown := out.interruption, false
	if recovered && rec.reverted {
		interruption += rec.outage
		unknown = rec.unknown
	}
	r.u.setPrevious(t.Container, c.Image)
	r.report(ctx, events.ContainerReplaced{
		Container: t.Container, Service: c.Service(), Result: events.ResultReplaced,
		FromImage: c.Image, ToImage: t.Image, FromImageID: c.ImageID, ToImageID: imageID,
		InterruptionMs: interruption.Milliseconds(), InterruptionUnknown: unknown,
	})
	return events.ContainerResult{
		Container: t.Container, Result: events.ResultReplaced,
		FromImage: c.Image, ToImage: t.Image, InterruptionMs: interruption.Milliseconds(), InterruptionUnknown: unknown,
	}, nil, nil
}

// transientOr returns err for a redelivery when it is worth retrying and no
// container was touched yet (engine unreachable, shutting down); otherwise
// it is a failure of step.
func (r *commandRun) transientOr(ctx context.Context, step string, err error) (events.ContainerResult, *failure, error) {
	if ctx.Err() != nil || (!r.changed && errors.Is(err, ErrUnavailable)) {
		return events.ContainerResult{}, nil, err
	}
	return events.ContainerResult{}, &failure{step, err}, nil
}

// settle finishes or reverts an earlier replacement of name that never
// finished (its renamed old container is still there), so a command starts
// from a container that serves.
func (u *Updater) settle(ctx context.Context, name string) error {
	trial, err := u.rt.Inspect(ctx, newName(name))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return fmt.Errorf("look up %s: %w", newName(name), err)
	default:
		if err := u.dropTrial(ctx, name, trial); err != nil {
			return fmt.Errorf("settle unfinished replacement of %s: %w", name, err)
		}
	}
	old, err := u.rt.Inspect(ctx, oldName(name))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up %s: %w", oldName(name), err)
	case old.Labels[events.LabelNode] != u.cfg.Node:
		return nil // not ours; lookup refuses name if it is not ours either
	}
	if err := u.recoverOne(ctx, name, old); err != nil {
		return fmt.Errorf("settle unfinished replacement of %s: %w", name, err)
	}
	return nil
}

// lookup returns the container called name when this node owns it.
func (u *Updater) lookup(ctx context.Context, name string) (Container, error) {
	c, err := u.rt.Inspect(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Container{}, fmt.Errorf("container %s does not exist on node %s: %w", name, u.cfg.Node, ErrNotFound)
		}
		return Container{}, err
	}
	if owner := c.Labels[events.LabelNode]; owner != u.cfg.Node {
		return Container{}, fmt.Errorf("container %s is not labelled %s=%s (owner %q), so this updater does not manage it: %w",
			name, events.LabelNode, u.cfg.Node, owner, ErrNotFound)
	}
	return c, nil
}
