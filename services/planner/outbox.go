package planner

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cutover-dev/cutover/events"
)

// apply carries out a decision of the machine on u, read at revision rev:
// it logs the decision's lines, then saves u with its events as outbox and
// publishes them, or publishes answers alone when u did not change.
func (p *Planner) apply(ctx context.Context, u *Upgrade, rev uint64, d decision) error {
	for _, l := range d.logs {
		p.log.Log(ctx, l.level, l.msg, l.args...)
	}
	if d.err != nil {
		return d.err
	}
	if d.save {
		return p.commit(ctx, u, rev, d.events...)
	}
	for _, e := range d.events {
		if err := p.pub.Publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
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
