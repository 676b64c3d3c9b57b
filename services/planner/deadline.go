package planner

import (
	"context"
	"time"
)

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
				if err := p.apply(ctx, u, rev, p.machine.expireGate(u, time.Now())); err != nil && ctx.Err() == nil {
					p.log.Warn("check verdict timeout", "upgrade", id, "err", err)
				}
				continue // a wave waiting for verdicts has nothing in flight
			}
			d := p.machine.expire(u, time.Now())
			if err := p.apply(ctx, u, rev, d); err != nil && ctx.Err() == nil {
				p.log.Warn("check progress deadline", "upgrade", id, "err", err)
			}
			if d.save {
				continue // the barrier is checked next tick, on fresh state
			}
			if err := p.checkBarrier(ctx, u, rev); err != nil && ctx.Err() == nil {
				p.log.Warn("check version barrier", "upgrade", id, "err", err)
			}
		}
	}
}

// checkBarrier reads the fleet when a contract migration waits at its
// version barrier, and lets the machine decide whether it holds.
func (p *Planner) checkBarrier(ctx context.Context, u *Upgrade, rev uint64) error {
	mp := barrierWaits(u)
	if mp == nil {
		return nil
	}
	fleet, err := p.fleet(ctx)
	if err != nil {
		return err
	}
	return p.apply(ctx, u, rev, p.machine.barrier(u, mp, fleet, time.Now()))
}
