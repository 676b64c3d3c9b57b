package nodeupdater

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// Bounds of the outbox.
const (
	// outboxLimit is how many status events the outbox holds while the bus
	// does not take them. One command at a time produces a handful per
	// container, so it is reached only by a very long outage during a very
	// large command: then pulling samples are shed and every other event
	// waits for room, which pauses the command rather than lose its record.
	outboxLimit = 1024
	// outboxRetryMin and outboxRetryMax bound the capped exponential backoff
	// between two failed publishes of the event at the head of the outbox.
	outboxRetryMin = 250 * time.Millisecond
	outboxRetryMax = 5 * time.Second
)

// publisher publishes one event and waits for the stream's acknowledgement.
type publisher interface {
	Publish(ctx context.Context, e events.Event) error
}

// outbox publishes the updater's status events in the order they were
// produced, holding them in memory while the bus is unreachable and trying
// again with capped backoff until it takes them. Each event keeps the id it
// was created with, so a publish whose acknowledgement was lost and is made
// again is stored once (Nats-Msg-Id deduplication), and consumers that
// remember handled ids see it once. One goroutine, owned by the Updater,
// does the publishing.
//
// It is not durable: events still queued when the process dies are lost.
// The command in flight is acked only once its final event is out, so it
// is redelivered and its outcome re-derived; recovery publishes what it
// did to containers a crash left half-replaced.
type outbox struct {
	pub publisher
	log *slog.Logger

	mu    sync.Mutex
	queue []*queued
	shed  int           // pulling samples dropped because the outbox was full
	wake  chan struct{} // an event was queued
	room  chan struct{} // an event left the queue
}

// queued is an event waiting in the outbox; done closes once it is stored.
type queued struct {
	e    events.Event
	done chan struct{}
}

func newOutbox(pub publisher, log *slog.Logger) *outbox {
	return &outbox{pub: pub, log: log, wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// add queues e and returns a channel closed once e is stored. When the
// outbox is full, a pulling sample is dropped (container.pulled supersedes
// it) and any other event waits for room until ctx ends.
func (o *outbox) add(ctx context.Context, e events.Event) (<-chan struct{}, error) {
	q := &queued{e: e, done: make(chan struct{})}
	for {
		o.mu.Lock()
		if len(o.queue) < outboxLimit {
			o.queue = append(o.queue, q)
			o.mu.Unlock()
			signal(o.wake)
			return q.done, nil
		}
		if e.Type() == events.TypeContainerPulling {
			o.shed++
			o.mu.Unlock()
			close(q.done)
			return q.done, nil
		}
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("queue %s %s: the outbox is full (%d events the bus has not taken): %w", e.Type(), e.ID(), outboxLimit, ctx.Err())
		case <-o.room:
		}
	}
}

// signal wakes a waiter on ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// head returns the oldest queued event, nil when there is none.
func (o *outbox) head() *queued {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 {
		return nil
	}
	return o.queue[0]
}

// pop removes the head once it is stored.
func (o *outbox) pop() {
	o.mu.Lock()
	q := o.queue[0]
	o.queue[0] = nil
	o.queue = o.queue[1:]
	o.mu.Unlock()
	close(q.done)
	signal(o.room)
}

// pending returns how many events wait to be published.
func (o *outbox) pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

// run publishes queued events in order until ctx ends.
func (o *outbox) run(ctx context.Context) {
	wait := outboxRetryMin
	failing := false
	for {
		q := o.head()
		if q == nil {
			select {
			case <-ctx.Done():
				return
			case <-o.wake:
				continue
			}
		}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		err := o.pub.Publish(pctx, q.e)
		cancel()
		if err == nil {
			if failing {
				o.log.Info("the bus takes status events again", "pending", o.pending()-1)
				failing = false
			}
			o.log.Debug("published", "type", q.e.Type(), "id", q.e.ID())
			o.pop()
			wait = outboxRetryMin
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			o.log.Warn("publish status event; holding it and those after it until the bus takes them", "type", q.e.Type(), "id", q.e.ID(), "pending", o.pending(), "err", err)
			failing = true
		} else {
			o.log.Debug("publish status event again", "type", q.e.Type(), "id", q.e.ID(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, outboxRetryMax)
	}
}

// flush waits until the outbox is empty or ctx ends, and reports what it
// could not publish.
func (o *outbox) flush(ctx context.Context) error {
	for {
		o.mu.Lock()
		n, shed := len(o.queue), o.shed
		var last *queued
		if n > 0 {
			last = o.queue[n-1]
		}
		o.mu.Unlock()
		if n == 0 {
			if shed > 0 {
				o.log.Warn("the outbox was full: pulling progress samples were dropped", "dropped", shed)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d status events not published (the bus did not take them before shutdown): %w", n, ctx.Err())
		case <-last.done:
		}
	}
}
