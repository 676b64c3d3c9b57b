package planner

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

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
