package auditor

import (
	"sync"
	"sync/atomic"
)

// Hub fans out the records the auditor stores to live clients (the
// dashboard's Server-Sent Events). Each subscriber has a bounded buffer; a
// subscriber that falls behind is dropped rather than slowing the auditor
// or growing memory: its channel is closed, and the client reconnects and
// reloads the history.
type Hub struct {
	buffer int
	max    int

	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	dropped atomic.Uint64
}

// Subscription is one live client of a Hub.
type Subscription struct {
	// C receives the records; it is closed when the subscriber is dropped
	// for falling behind, or cancelled.
	C       <-chan Record
	c       chan Record
	upgrade string
	hub     *Hub
	once    sync.Once
}

// NewHub returns a Hub giving each subscriber a buffer of buffer records
// (default 256) and accepting at most max subscribers (default 64).
func NewHub(buffer, max int) *Hub {
	if buffer <= 0 {
		buffer = 256
	}
	if max <= 0 {
		max = 64
	}
	return &Hub{buffer: buffer, max: max, subs: map[*Subscription]struct{}{}}
}

// Subscribe returns a subscription to the records of one upgrade (every
// record when upgrade is ""), or nil when the hub has max subscribers.
func (h *Hub) Subscribe(upgrade string) *Subscription {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.max {
		return nil
	}
	c := make(chan Record, h.buffer)
	s := &Subscription{C: c, c: c, upgrade: upgrade, hub: h}
	h.subs[s] = struct{}{}
	return s
}

// Cancel ends the subscription and closes C. It is safe to call twice.
func (s *Subscription) Cancel() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.hub.subs, s)
		close(s.c)
	})
}

// Publish hands r to every interested subscriber without blocking; a
// subscriber whose buffer is full is dropped.
func (h *Hub) Publish(r Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.upgrade != "" && s.upgrade != r.UpgradeID {
			continue
		}
		select {
		case s.c <- r:
		default:
			h.dropped.Add(1)
			s.closeLocked()
		}
	}
}

// Subscribers returns the number of live subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Dropped returns how many subscribers were dropped for falling behind.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }
