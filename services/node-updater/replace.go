package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/redact"
)

// revertTimeout bounds a revert or a commit's cleanup. They run detached from
// the command's context, so a cancelled replacement still ends with the old
// container serving again; the bound keeps a wedged engine from holding
// Close forever.
const revertTimeout = 2 * time.Minute

// stopMargin is added to a container's stop grace period to bound the stop
// call: the engine kills the process after the grace period, which takes a
// moment more.
const stopMargin = 30 * time.Second

// replacement replaces one container, stop-first or start-first.
//
// Stop-first renames the old container out of the way while it still runs,
// stops it, creates the new one under the name with the same configuration,
// starts it, gates on its health, and only then removes the old one.
// Renaming before stopping means a stopped old container always carries the
// -cutover-old name: whatever step a crash interrupts, the names on the
// engine say what recovery must do, and no stopped container is left under
// its own name without a record.
//
// Start-first creates and starts the new container under a temporary name
// (-cutover-new) beside the old one, gates on its health, then renames the
// old one out of the way, gives the new one the name, and stops and removes
// the old one. The old container serves until the new one is healthy, so
// there is no interruption; but both run at once, so start-first suits only
// services without fixed host ports or static IP addresses (a second
// container cannot bind them).
//
// Any failure reverts to the old container.
type replacement struct {
	u       *Updater
	log     *slog.Logger
	target  events.ContainerTarget
	old     Container
	imageID string
	cause   events.Event // the command, recorded on the new container

	renamed bool   // old container renamed to oldName
	stopped bool   // a stop of the old container was attempted
	newID   string // created replacement, "" until created
}

// outcome is what a replacement did.
type outcome struct {
	interruption time.Duration // old stopped -> new healthy, on success
	failed       *failure      // the step that failed, nil on success
	reverted     bool          // the old container serves again
	lastLogs     []string      // the failed new container's last log lines
}

func (r *replacement) run(ctx context.Context) outcome {
	if r.target.Strategy == StrategyStartFirst {
		return r.runStartFirst(ctx)
	}
	name := r.target.Container
	r.log.Info("replacing container stop-first", "from", r.old.Image, "old_id", shortID(r.old.ID))

	if err := r.u.rt.Rename(ctx, r.old.ID, oldName(name)); err != nil {
		return r.abort(ctx, StepRename, fmt.Errorf("rename %s to %s: %w", name, oldName(name), err))
	}
	r.renamed = true
	r.u.stepDone(StepRename)

	if err := r.stopOld(ctx); err != nil {
		return r.abort(ctx, StepStop, err)
	}
	stoppedAt := time.Now()
	r.u.stepDone(StepStop)

	id, err := r.u.rt.CreateReplacement(ctx, r.old.ID, name, r.target.Image, r.labels())
	if err != nil {
		return r.abort(ctx, StepCreate, fmt.Errorf("create %s from %s: %w", name, r.target.Image, err))
	}
	r.newID = id
	r.u.stepDone(StepCreate)

	if err := r.u.rt.Start(ctx, id); err != nil {
		return r.abort(ctx, StepStart, fmt.Errorf("start new %s: %w", name, err))
	}
	r.u.stepDone(StepStart)
	if err := r.u.waitHealthy(ctx, id, gateFor(r.target, true)); err != nil {
		return r.abort(ctx, StepHealth, err)
	}
	interruption := time.Since(stoppedAt)
	r.u.stepDone(StepHealth)

	r.commit(ctx)
	r.log.Info("container replaced", "new_id", shortID(id), "interruption", interruption.Round(time.Millisecond))
	return outcome{interruption: interruption}
}

// runStartFirst replaces the container with the new one running beside it
// until the new one is healthy.
func (r *replacement) runStartFirst(ctx context.Context) outcome {
	name := r.target.Container
	r.log.Info("replacing container start-first", "from", r.old.Image, "old_id", shortID(r.old.ID))

	id, err := r.u.rt.CreateReplacement(ctx, r.old.ID, newName(name), r.target.Image, r.labels())
	if err != nil {
		return r.abort(ctx, StepCreate, fmt.Errorf("create %s from %s: %w", newName(name), r.target.Image, err))
	}
	r.newID = id
	r.u.stepDone(StepCreate)

	if err := r.u.rt.Start(ctx, id); err != nil {
		return r.abort(ctx, StepStart, fmt.Errorf("start new %s: %w", newName(name), err))
	}
	r.u.stepDone(StepStart)
	if err := r.u.waitHealthy(ctx, id, gateFor(r.target, true)); err != nil {
		return r.abort(ctx, StepHealth, err)
	}
	healthyAt := time.Now()
	r.u.stepDone(StepHealth)

	if err := r.u.rt.Rename(ctx, r.old.ID, oldName(name)); err != nil {
		return r.abort(ctx, StepRename, fmt.Errorf("rename %s to %s: %w", name, oldName(name), err))
	}
	r.renamed = true
	r.u.stepDone(StepRename)
	if err := r.u.rt.Rename(ctx, id, name); err != nil {
		return r.abort(ctx, StepSwap, fmt.Errorf("rename new %s to %s: %w", newName(name), name, err))
	}
	r.u.stepDone(StepSwap)

	// The new container is healthy and has the name: from here on the
	// replacement is committed whatever happens to the old one.
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	if err := r.stopOld(stopCtx); err != nil {
		r.log.Warn("stop old container after a start-first swap; removing it by force", "err", err)
	}
	stoppedAt := time.Now()
	r.u.stepDone(StepStop)
	// The old container stopped after the new one was healthy: no gap.
	interruption := max(healthyAt.Sub(stoppedAt), 0)
	r.commit(ctx)
	r.log.Info("container replaced", "new_id", shortID(id), "interruption", interruption)
	return outcome{interruption: interruption}
}

// labels returns the labels set on the new container: the command's health
// gate and the command itself, for recovery after a crash.
func (r *replacement) labels() map[string]string {
	l := gateLabels(r.target)
	maps.Copy(l, commandLabels(r.cause))
	return l
}

// stopOld stops the old container within its grace period plus a margin.
func (r *replacement) stopOld(ctx context.Context) error {
	stop := r.old.StopTimeout
	if stop <= 0 {
		stop = DefaultStopTimeout
	}
	r.stopped = true
	sctx, cancel := context.WithTimeout(ctx, stop+stopMargin)
	defer cancel()
	if err := r.u.rt.Stop(sctx, r.old.ID, stop); err != nil {
		return fmt.Errorf("stop %s: %w", r.target.Container, err)
	}
	return nil
}

// commit removes the old container. A failed removal leaves it renamed;
// the next command for this container or the next start settles it.
func (r *replacement) commit(ctx context.Context) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	if err := r.u.rt.Remove(cctx, r.old.ID); err != nil && !errors.Is(err, ErrNotFound) {
		r.log.Warn("remove old container after commit; it stays renamed", "old", oldName(r.target.Container), "err", err)
	}
}

// abort reverts a failed replacement on a context detached from ctx, so a
// cancellation half-way still ends with the old container back.
func (r *replacement) abort(ctx context.Context, step string, cause error) outcome {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	r.log.Warn("replacement failed; reverting", "step", step, "err", cause)

	var logs []string
	if r.newID != "" {
		lines, err := r.u.rt.Logs(cctx, r.newID, lastLogLines)
		if err != nil {
			r.log.Warn("read logs of failed container", "err", err)
		}
		// The lines go out in container.reverted: hide what looks secret,
		// first the values of the container's own secret-named variables
		// (the new container has the old one's environment).
		logs = redact.Lines(lines, redact.EnvSecrets(r.old.Env))
	}
	if err := r.revert(cctx); err != nil {
		r.log.Error("revert failed; the old container may not be serving", "old", oldName(r.target.Container), "err", err)
		return outcome{failed: &failure{step, fmt.Errorf("%w; revert failed: %w", cause, err)}, lastLogs: logs}
	}
	r.log.Info("replacement reverted; old container serves again", "step", step)
	return outcome{failed: &failure{step, cause}, reverted: true, lastLogs: logs}
}

// revert removes the new container, starts the old one again when this
// replacement stopped it, renames it back, and waits until it is healthy.
// The old container starts before it takes its name back, so a crash in
// between leaves it under the -cutover-old name for recovery to find.
func (r *replacement) revert(ctx context.Context) error {
	name := r.target.Container
	if r.newID != "" {
		if err := r.u.rt.Remove(ctx, r.newID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove failed new %s: %w", name, err)
		}
	}
	restart := r.stopped && r.old.Running
	if restart {
		if err := r.u.rt.Start(ctx, r.old.ID); err != nil {
			return fmt.Errorf("restart old %s: %w", name, err)
		}
	}
	if r.renamed {
		if err := r.u.rt.Rename(ctx, r.old.ID, name); err != nil {
			return fmt.Errorf("rename %s back to %s: %w", oldName(name), name, err)
		}
	}
	if !restart {
		return nil
	}
	if err := r.u.waitHealthy(ctx, r.old.ID, healthGate{minHealthy: DefaultMinHealthy, timeout: DefaultHealthTimeout}); err != nil {
		return fmt.Errorf("old %s after restart: %w", name, err)
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
