package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cutover-dev/cutover/events"
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

// replacement replaces one container stop-first: stop the old one, rename it
// out of the way, create the new one under the name with the same
// configuration, start it, gate on its health, and only then remove the old
// one. Any failure after the stop reverts to the old container.
type replacement struct {
	u       *Updater
	log     *slog.Logger
	target  events.ContainerTarget
	old     Container
	imageID string

	renamed bool   // old container renamed to oldName
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
	name := r.target.Container
	stop := r.old.StopTimeout
	if stop <= 0 {
		stop = DefaultStopTimeout
	}
	r.log.Info("replacing container", "from", r.old.Image, "old_id", shortID(r.old.ID))

	sctx, cancel := context.WithTimeout(ctx, stop+stopMargin)
	err := r.u.rt.Stop(sctx, r.old.ID, stop)
	cancel()
	if err != nil {
		return r.abort(ctx, StepStop, fmt.Errorf("stop %s: %w", name, err))
	}
	stoppedAt := time.Now()

	if err := r.u.rt.Rename(ctx, r.old.ID, oldName(name)); err != nil {
		return r.abort(ctx, StepRename, fmt.Errorf("rename %s to %s: %w", name, oldName(name), err))
	}
	r.renamed = true

	id, err := r.u.rt.CreateReplacement(ctx, r.old.ID, name, r.target.Image)
	if err != nil {
		return r.abort(ctx, StepCreate, fmt.Errorf("create %s from %s: %w", name, r.target.Image, err))
	}
	r.newID = id

	if err := r.u.rt.Start(ctx, id); err != nil {
		return r.abort(ctx, StepStart, fmt.Errorf("start new %s: %w", name, err))
	}
	if err := r.u.waitHealthy(ctx, id, gateFor(r.target, true)); err != nil {
		return r.abort(ctx, StepHealth, err)
	}
	interruption := time.Since(stoppedAt)

	// Committed: the old container goes. A failed removal leaves it renamed;
	// the next command for this container or the next start settles it.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	if err := r.u.rt.Remove(cctx, r.old.ID); err != nil && !errors.Is(err, ErrNotFound) {
		r.log.Warn("remove old container after commit; it stays renamed", "old", oldName(name), "err", err)
	}
	r.log.Info("container replaced", "new_id", shortID(id), "interruption", interruption.Round(time.Millisecond))
	return outcome{interruption: interruption}
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
		logs = lines
	}
	if err := r.revert(cctx); err != nil {
		r.log.Error("revert failed; the old container may not be serving", "old", oldName(r.target.Container), "err", err)
		return outcome{failed: &failure{step, fmt.Errorf("%w; revert failed: %w", cause, err)}, lastLogs: logs}
	}
	r.log.Info("replacement reverted; old container serves again", "step", step)
	return outcome{failed: &failure{step, cause}, reverted: true, lastLogs: logs}
}

// revert removes the new container, renames the old one back and, when it
// was running before, starts it and waits until it is healthy again.
func (r *replacement) revert(ctx context.Context) error {
	name := r.target.Container
	if r.newID != "" {
		if err := r.u.rt.Remove(ctx, r.newID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove failed new %s: %w", name, err)
		}
	}
	if r.renamed {
		if err := r.u.rt.Rename(ctx, r.old.ID, name); err != nil {
			return fmt.Errorf("rename %s back to %s: %w", oldName(name), name, err)
		}
	}
	if !r.old.Running {
		return nil
	}
	if err := r.u.rt.Start(ctx, r.old.ID); err != nil {
		return fmt.Errorf("restart old %s: %w", name, err)
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
