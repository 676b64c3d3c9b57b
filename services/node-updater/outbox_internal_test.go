package nodeupdater

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// gatePublisher refuses every event until it is opened, then records them.
type gatePublisher struct {
	mu   sync.Mutex
	open bool
	got  []string
}

func (p *gatePublisher) Publish(_ context.Context, e events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open {
		return errors.New("bus down")
	}
	p.got = append(p.got, e.ID())
	return nil
}

func (p *gatePublisher) setOpen() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.open = true
}

func (p *gatePublisher) published() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// TestOutboxIsBoundedAndOrdered fills the outbox while the bus refuses
// events: a pulling sample beyond the limit is dropped, any other event
// waits for room; once the bus takes events again every held one is
// published once, in order.
func TestOutboxIsBoundedAndOrdered(t *testing.T) {
	pub := &gatePublisher{}
	o := newOutbox(pub, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { o.run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	mk := func(d events.Data) events.Event {
		e, err := events.New(events.Source(serviceName, "n1"), d, events.WithNode("n1"))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var want []string
	for range outboxLimit {
		e := mk(events.ContainerDraining{Container: "web"})
		if _, err := o.add(ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.ID())
	}
	if done, err := o.add(ctx, mk(events.ContainerPulling{Container: "web", Image: "app:2"})); err != nil {
		t.Fatal(err)
	} else {
		select {
		case <-done:
		default:
			t.Fatal("a pulling sample beyond the limit was held, want it dropped")
		}
	}
	if o.pending() != outboxLimit {
		t.Fatalf("outbox holds %d events, want the limit %d", o.pending(), outboxLimit)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := o.add(short, mk(events.ContainerReplaced{Container: "web", Result: events.ResultReplaced})); err == nil {
		t.Fatal("a full outbox took another event, want it to wait for room")
	}

	last := mk(events.ContainerReplaced{Container: "web", Result: events.ResultReplaced})
	added := make(chan (<-chan struct{}), 1)
	go func() {
		done, err := o.add(ctx, last)
		if err != nil {
			t.Error(err)
		}
		added <- done
	}()
	pub.setOpen()
	done := <-added
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the last event was never published")
	}
	want = append(want, last.ID())
	got := pub.published()
	if len(got) != len(want) {
		t.Fatalf("published %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d published is %s, want %s (order lost)", i, got[i], want[i])
		}
	}
	if err := o.flush(ctx); err != nil {
		t.Fatal(err)
	}
}
