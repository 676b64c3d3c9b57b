package planner

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// LeaseKey is the key of the planner leader lease in the cutover-locks bucket.
// Its value is the leader's lease id (leaseID); every refresh is a new revision.
const LeaseKey = "planner.leader"

// leaseID is what a planner process writes in the lease: its instance name
// and a nonce drawn when the process starts. The nonce tells two processes
// mistakenly given the same --instance apart: without it each took the
// lease from the other at once, as its own, and both led by turns.
func leaseID(instance, nonce string) string { return instance + "#" + nonce }

// leaseInstance is the instance name in a lease value (a whole value
// written before lease ids had a nonce).
func leaseInstance(value string) string {
	if i := strings.LastIndexByte(value, '#'); i >= 0 {
		return value[:i]
	}
	return value
}

// lease is one replica's view of the leader lease.
type lease struct {
	id        string    // leaseID of this process
	twin      string    // the last lease value under our instance name but not ours that was reported
	rev       uint64    // revision of our own last write, while we hold it
	refreshed time.Time // when we last wrote it
	seenRev   uint64    // a standby's last seen revision of someone else's lease
	seenAt    time.Time // when the standby first saw seenRev
}

// Start takes the leader lease if it is free and, holding it, starts
// handling events; a standby watches the lease and takes over once the
// leader stopped refreshing it for LeaseTTL. Only the lease holder consumes
// events, so two replicas never both act; the upgrade state's
// compare-and-swap covers the moment of a takeover.
func (p *Planner) Start(ctx context.Context) error {
	held, err := p.acquire(ctx, time.Now())
	if err != nil {
		return err
	}
	if held {
		if err := p.lead(ctx); err != nil {
			p.releaseLease(context.WithoutCancel(ctx))
			return err
		}
	} else {
		p.log.Info("standing by: another planner holds the lease")
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.runStop, p.runDone = cancel, make(chan struct{})
	go p.keepLease(rctx)
	return nil
}

// Leading reports whether this replica holds the lease and handles events.
func (p *Planner) Leading() bool { return p.leading.Load() }

// keepLease refreshes the lease while leading, and watches it otherwise.
func (p *Planner) keepLease(ctx context.Context) {
	defer close(p.runDone)
	t := time.NewTicker(p.cfg.LeaseRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if p.leading.Load() {
			if p.refresh(ctx, now) {
				continue
			}
			p.log.Warn("lost the planner lease: standing by")
			if err := p.stepDown(ctx); err != nil {
				p.log.Warn("step down", "err", err)
			}
			continue
		}
		held, err := p.acquire(ctx, now)
		if err != nil {
			p.log.Debug("read planner lease", "err", err)
			continue
		}
		if !held {
			continue
		}
		if err := p.lead(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("take over as planner leader", "err", err)
			_ = p.stepDown(ctx)
			p.releaseLease(context.WithoutCancel(ctx))
		}
	}
}

// refresh writes the lease again; false means it is lost: someone else
// wrote it, or it could not be written for a whole TTL.
func (p *Planner) refresh(ctx context.Context, now time.Time) bool {
	rev, err := p.locks.Update(ctx, LeaseKey, []byte(p.lease.id), p.lease.rev)
	if err == nil {
		p.lease.rev, p.lease.refreshed = rev, now
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return false
	}
	// A transient error: keep leading until the lease would be stale for others.
	return now.Sub(p.lease.refreshed) < p.cfg.LeaseTTL
}

// acquire takes the lease when it is free, this process's own, or stale: its
// revision did not change for LeaseTTL as this replica watched it. Staleness
// is judged on this replica's clock only, so clock skew between hosts does
// not matter. A lease under this replica's instance name but another
// process's nonce (this planner restarted after a crash, or a second
// process given the same --instance) is waited for like any other: only
// staleness tells a dead holder from a live one. A planner that stops
// cleanly deletes its lease, so its restart takes it at once.
func (p *Planner) acquire(ctx context.Context, now time.Time) (bool, error) {
	entry, err := p.locks.Get(ctx, LeaseKey)
	if events.IsNotFound(err) {
		rev, err := p.locks.Create(ctx, LeaseKey, []byte(p.lease.id))
		if errors.Is(err, jetstream.ErrKeyExists) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		p.lease.rev, p.lease.refreshed = rev, now
		p.log.Info("took the planner lease", "instance", p.cfg.InstanceID)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	holder := string(entry.Value())
	if holder != p.lease.id {
		if leaseInstance(holder) == p.cfg.InstanceID && holder != p.lease.twin {
			p.lease.twin = holder
			p.log.Warn("the planner lease is held under this instance name by another process (this planner's own before a crash, or a second planner given the same --instance): waiting until it is not refreshed for the lease TTL; give each planner its own --instance",
				"instance", p.cfg.InstanceID, "holder", holder, "lease_ttl", p.cfg.LeaseTTL)
		}
		if entry.Revision() != p.lease.seenRev {
			p.lease.seenRev, p.lease.seenAt = entry.Revision(), now
			return false, nil
		}
		if now.Sub(p.lease.seenAt) < p.cfg.LeaseTTL {
			return false, nil
		}
	}
	rev, err := p.locks.Update(ctx, LeaseKey, []byte(p.lease.id), entry.Revision())
	if err != nil {
		return false, nil // another standby was faster
	}
	p.lease.rev, p.lease.refreshed = rev, now
	p.log.Info("took over the planner lease", "instance", p.cfg.InstanceID, "stale_holder", holder)
	return true, nil
}

// releaseLease deletes the lease if it is still ours, so a standby need not
// wait for it to go stale.
func (p *Planner) releaseLease(ctx context.Context) {
	if err := p.locks.Delete(ctx, LeaseKey, jetstream.LastRevision(p.lease.rev)); err != nil {
		p.log.Debug("release planner lease", "err", err)
	}
}
