package nodeupdater

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
)

// drain publishes the container's draining event and, when the target asks
// for it, waits for a load balancer to acknowledge it with a
// dev.cutover.container.drained event on cutover.node.<node>.ack whose
// causationid is the draining event's id (or that names no cause).
//
// The acknowledgement is read through a plain subscription on the node's
// ack subject, made before the draining event is published, so a fast agent
// cannot answer before the updater listens (the server handles one
// connection's SUB before its later PUB). It is not read through the command
// consumer: that one handles one message at a time and is busy with this
// very command. Nor through an ordered consumer: pulling from it needs
// $JS.API.CONSUMER.MSG.NEXT on any consumer name, which would let one node's
// identity pull another node's commands; a subscription needs only
// cutover.node.<node>.ack.
//
// When no acknowledgement comes within DrainAckTimeoutMs the replacement
// goes on, unless DrainAckRequired, in which case drain returns an error and
// nothing has been touched.
func (r *commandRun) drain(ctx context.Context, t events.ContainerTarget, c Container) error {
	data := events.ContainerDraining{Container: t.Container, Service: c.Service()}
	if t.DrainAckTimeoutMs <= 0 {
		r.report(ctx, data)
		return nil
	}
	timeout := time.Duration(t.DrainAckTimeoutMs) * time.Millisecond
	node := r.u.cfg.Node
	acks := make(chan events.Event, 16)
	sub, err := r.u.js.Conn().Subscribe(events.NodeAckSubject(node), func(m *nats.Msg) {
		e, err := events.DecodeMsg(m.Subject, m.Header, m.Data)
		if err != nil || e.Type() != events.TypeContainerDrained {
			return
		}
		select {
		case acks <- e:
		default: // the waiter has what it needs or is gone
		}
	})
	if err != nil {
		return fmt.Errorf("listen for drain acknowledgements of %s on %s: %w", t.Container, events.NodeAckSubject(node), err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	draining, err := events.New(events.Source(serviceName, node), data, events.CausedBy(r.cause), events.WithNode(node))
	if err != nil {
		return err
	}
	// The draining event goes through the outbox, after the events before
	// it; the wait for an acknowledgement starts once it is stored (while
	// the bus is down no agent could see it anyway).
	published, err := r.u.out.add(ctx, draining)
	if err != nil {
		return fmt.Errorf("publish draining of %s: %w", t.Container, err)
	}
	select {
	case <-published:
	case <-ctx.Done():
		return ctx.Err()
	}

	begin := time.Now()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			if t.DrainAckRequired {
				return fmt.Errorf("drain %s: no %s acknowledgement on %s within %s; the old container keeps serving (is the load-balancer agent running?)",
					t.Container, events.TypeContainerDrained, events.NodeAckSubject(node), timeout)
			}
			r.log.Warn("no drain acknowledgement in time; replacing anyway", "container", t.Container, "timeout", timeout)
			return nil
		case e := <-acks:
			ack, err := events.DataAs[events.ContainerDrained](e)
			if err != nil || ack.Container != t.Container {
				continue
			}
			if cause := events.CausationID(e); cause != "" && cause != draining.ID() {
				continue // an acknowledgement of an earlier drain
			}
			r.log.Info("drain acknowledged", "container", t.Container, "agent", ack.Agent, "after", time.Since(begin).Round(time.Millisecond))
			return nil
		}
	}
}
