package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"time"

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

	var gateErr error
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
			outage, known := outageOf(old, cur, time.Now())
			u.setPrevious(name, old.Image)
			rec := recoveredReplacement{fromImage: old.Image, fromImageID: old.ImageID, toImageID: cur.ImageID, outage: outage, unknown: !known}
			rec.reported = u.reportRecovery(ctx, cur.Labels, events.ContainerReplaced{
				Container: name, Service: cur.Service(), Result: events.ResultReplaced,
				FromImage: old.Image, ToImage: cur.Image, FromImageID: old.ImageID, ToImageID: cur.ImageID,
				InterruptionMs: outage.Milliseconds(), InterruptionUnknown: !known, Recovered: true,
			})
			u.prevMu.Lock()
			u.recovered[name] = rec
			u.prevMu.Unlock()
			log.Info("recovery finished an interrupted replacement: the new container is healthy, the old one is removed",
				"new_id", shortID(cur.ID), "image", cur.Image, "interruption", outage.Round(time.Millisecond), "interruption_known", known)
			return nil
		}
		gateErr = err
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
	outage, known := outageOf(old, Container{}, time.Now())
	reason := "the node-updater stopped (crashed or was killed) during this replacement; recovery at its start went back to the old container, and the command, redelivered, replaces it again"
	if gateErr != nil {
		reason = fmt.Sprintf("the node-updater stopped during this replacement; recovery at its start found the new container failing its health gate (%v) and went back to the old one", gateErr)
	}
	var labels map[string]string
	image := ""
	if exists {
		labels, image = cur.Labels, cur.Image
	}
	u.reportRecovery(ctx, labels, events.ContainerReverted{
		Container: name, Step: StepRecovery, Reason: reason, Image: image,
		InterruptionMs: outage.Milliseconds(), InterruptionUnknown: !known,
	})
	u.prevMu.Lock()
	u.recovered[name] = recoveredReplacement{reverted: true, outage: outage, unknown: !known}
	u.prevMu.Unlock()
	log.Info("recovery reverted an interrupted replacement: the old container serves again", "image", old.Image, "removed_new", exists,
		"interruption", outage.Round(time.Millisecond), "interruption_known", known)
	return nil
}

// outageOf returns how long a container did not serve until until, when a
// crash interrupted its replacement: from the engine's record of the old
// container's stop, so the time the node-updater was down counts. A running
// old container never stopped (0). A new container that started before the
// old one stopped is a start-first replacement past its swap, which served
// throughout (0). known is false when the old container stopped and the
// engine cannot tell when.
func outageOf(old, cur Container, until time.Time) (d time.Duration, known bool) {
	switch {
	case old.Running:
		return 0, true
	case old.StoppedAt.IsZero() || old.StoppedAt.Before(old.StartedAt):
		return 0, false
	case !cur.StartedAt.IsZero() && cur.StartedAt.Before(old.StoppedAt):
		return 0, true
	}
	return max(until.Sub(old.StoppedAt), 0), true
}

// reportRecovery queues an event recovery produced, caused by the command
// recorded in labels (the new container's) when they name one. It reports
// whether the event was queued.
func (u *Updater) reportRecovery(ctx context.Context, labels map[string]string, data events.Data) bool {
	opts := append([]events.Option{events.WithNode(u.cfg.Node)}, causedByLabels(labels)...)
	e, err := events.New(events.Source(serviceName, u.cfg.Node), data, opts...)
	if err == nil {
		_, err = u.out.add(context.WithoutCancel(ctx), e)
	}
	if err != nil {
		u.log.Warn("queue recovery event", "type", data.EventType(), "err", err)
		return false
	}
	return true
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
	u.reportRecovery(ctx, trial.Labels, events.ContainerReverted{
		Container: name, Step: StepRecovery, Image: trial.Image,
		Reason: "the node-updater stopped during this start-first replacement, before the new container took the name; recovery removed the new container (the old one served throughout)",
	})
	u.log.Info("recovery removed an unfinished start-first replacement", "container", name, "new_id", shortID(trial.ID))
	return nil
}
