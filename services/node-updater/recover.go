package nodeupdater

import (
	"context"
	"errors"
	"fmt"

	"github.com/cutover-dev/cutover/events"
)

// recoverAll settles every replacement a crash left unfinished: each owned
// container renamed to <name>-cutover-old. An unreachable engine fails
// start-up; a container that cannot be settled is logged and left for the
// next command that names it (which settles it first) or the next start.
func (u *Updater) recoverAll(ctx context.Context) error {
	list, err := u.rt.List(ctx, u.cfg.Node)
	if err != nil {
		return fmt.Errorf("list containers of node %s for recovery: %w", u.cfg.Node, err)
	}
	// Start-first replacements on trial go first: a crash before the swap
	// means the old container still has (or gets back) the name.
	for _, c := range list {
		name, ok := isNewName(c.Name)
		if !ok {
			continue
		}
		if err := u.dropTrial(ctx, name, c); err != nil {
			if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return fmt.Errorf("recover %s: %w", name, err)
			}
			u.log.Error("recovery could not remove an unfinished start-first replacement; the next command for it retries", "container", name, "err", err)
		}
	}
	for _, c := range list {
		name, ok := isOldName(c.Name)
		if !ok {
			continue
		}
		if err := u.recoverOne(ctx, name, c); err != nil {
			if errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
				return fmt.Errorf("recover %s: %w", name, err)
			}
			u.log.Error("recovery could not settle an unfinished replacement; the next command for it retries", "container", name, "err", err)
		}
	}
	return nil
}

// recoverOne settles an unfinished replacement of name whose old container
// is old (renamed to <name>-cutover-old). When a container called name runs,
// the replacement got as far as its start: finish it (the health gate the
// command set, recorded on the new container, then remove the old one), or
// revert when the gate fails. Otherwise revert:
// remove what stands under the name, rename the old one back and start it.
// It works on a context detached from ctx's cancellation, so it never stops
// between the removal of the new container and the restart of the old one.
func (u *Updater) recoverOne(ctx context.Context, name string, old Container) error {
	detached := context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(detached, revertTimeout)
	defer cancel()
	log := u.log.With("container", name, "old_id", shortID(old.ID))

	cur, err := u.rt.Inspect(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("inspect %s: %w", name, err)
	}
	if exists && cur.Labels[events.LabelNode] != u.cfg.Node {
		return fmt.Errorf("container %s is not labelled %s=%s; leaving it and %s alone", name, events.LabelNode, u.cfg.Node, old.Name)
	}

	if exists && cur.Running {
		gate, err := recordedGate(cur.Labels)
		if err != nil {
			log.Warn("recovery judges the new container by the default health gate", "err", err)
		}
		// The gate bounds its own wait, which may be longer than the
		// revert's budget; the steps after it get that budget afresh.
		err = u.waitHealthy(detached, cur.ID, gate)
		ctx, cancel = context.WithTimeout(detached, revertTimeout)
		defer cancel()
		if err == nil {
			if err := u.rt.Remove(ctx, old.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("remove old %s: %w", old.Name, err)
			}
			u.setPrevious(name, old.Image)
			u.prevMu.Lock()
			u.recovered[name] = recoveredReplacement{fromImage: old.Image, fromImageID: old.ImageID, toImageID: cur.ImageID}
			u.prevMu.Unlock()
			log.Info("recovery finished an interrupted replacement: the new container is healthy, the old one is removed",
				"new_id", shortID(cur.ID), "image", cur.Image)
			return nil
		}
		log.Info("recovery found the new container unhealthy; reverting", "new_id", shortID(cur.ID), "err", err)
	}

	if exists {
		if err := u.rt.Remove(ctx, cur.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("remove unfinished new %s: %w", name, err)
		}
	}
	// Start before taking the name back: a crash in between leaves the old
	// container under its -cutover-old name, still findable.
	if err := u.rt.Start(ctx, old.ID); err != nil {
		return fmt.Errorf("start old %s: %w", name, err)
	}
	if err := u.rt.Rename(ctx, old.ID, name); err != nil {
		return fmt.Errorf("rename %s back to %s: %w", old.Name, name, err)
	}
	if err := u.waitHealthy(ctx, old.ID, healthGate{minHealthy: DefaultMinHealthy, timeout: DefaultHealthTimeout}); err != nil {
		return fmt.Errorf("old %s after restart: %w", name, err)
	}
	log.Info("recovery reverted an interrupted replacement: the old container serves again", "image", old.Image, "removed_new", exists)
	return nil
}

// dropTrial removes trial, a start-first replacement of name that never
// took the name over. The old container was not stopped before the swap, so
// removing the trial is the whole revert.
func (u *Updater) dropTrial(ctx context.Context, name string, trial Container) error {
	if trial.Labels[events.LabelNode] != u.cfg.Node {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revertTimeout)
	defer cancel()
	if err := u.rt.Remove(ctx, trial.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("remove unfinished start-first replacement %s: %w", trial.Name, err)
	}
	u.log.Info("recovery removed an unfinished start-first replacement", "container", name, "new_id", shortID(trial.ID))
	return nil
}
