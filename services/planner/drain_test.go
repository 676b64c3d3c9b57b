package planner_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/planner"
)

// fakeEvacuator answers every drain request with dev.cutover.node.drained,
// as a script that live-migrates a node's VMs would.
func fakeEvacuator(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	pub := events.NewPublisher(js)
	c, err := events.Consume(t.Context(), js, events.ConsumerConfig{Durable: "fake-evacuator", FilterSubjects: []string{events.SubjectNodeDrainAll}},
		func(ctx context.Context, req events.Event) error {
			if req.Type() != events.TypeNodeDrainRequested {
				return nil
			}
			return pub.Publish(ctx, events.MustNew(events.Source("evacuator", ""), events.NodeDrained{Evacuator: "test", Message: "2 VMs moved"},
				events.CausedBy(req), events.WithNode(events.NodeID(req))))
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
}

func libvirt(image string) events.ObservedContainer {
	return events.ObservedContainer{Name: "nova_libvirt", Service: "libvirt", Image: image, State: "running", WorkloadHost: true}
}

func TestWorkloadHostWaitsForTheDrain(t *testing.T) {
	tests := []struct {
		name       string
		evacuator  bool
		wantPhase  string
		wantReason string
	}{
		{name: "drained node is updated with Drained", evacuator: true, wantPhase: planner.PhaseCompleted},
		{name: "undrained node is never touched", wantPhase: planner.PhaseRolledBack, wantReason: "n1: not drained within"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t)
			h := record(t, s)
			putInventory(t, s.JS, "n1", libvirt("libvirt:v1"))
			fakeNode(t, s.JS, "n1", nil)
			if tc.evacuator {
				fakeEvacuator(t, s.JS)
			}
			startPlannerWith(t, s.JS, planner.Config{DrainTimeout: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond})

			id := request(t, s.JS, map[string]string{"libvirt": "libvirt:v2"})
			u := waitPhase(t, s.JS, id, tc.wantPhase)
			if !strings.Contains(u.Reason, tc.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", u.Reason, tc.wantReason)
			}
			drains := h.of(events.TypeNodeDrainRequested)
			if len(drains) != 1 || events.NodeID(drains[0]) != "n1" {
				t.Fatalf("%d drain requests, want 1 for n1", len(drains))
			}
			if d, _ := events.DataAs[events.NodeDrainRequested](drains[0]); len(d.Containers) != 1 || d.Containers[0] != "nova_libvirt" {
				t.Errorf("drain request = %+v, want it to name nova_libvirt", d)
			}
			cmds := h.of(events.TypeNodeUpdateRequested)
			if !tc.evacuator {
				if len(cmds) != 0 {
					t.Errorf("%d commands to an undrained node, want 0", len(cmds))
				}
				return
			}
			if len(cmds) != 1 {
				t.Fatalf("%d commands, want 1", len(cmds))
			}
			if d, _ := events.DataAs[events.NodeUpdateRequested](cmds[0]); !d.Drained {
				t.Errorf("command = %+v, want Drained", d)
			}
			drained := h.index(func(e events.Event) bool { return e.Type() == events.TypeNodeDrained })
			cmd := h.index(func(e events.Event) bool { return e.Type() == events.TypeNodeUpdateRequested })
			if drained < 0 || cmd < drained {
				t.Errorf("node.drained at %d, command at %d; the command must follow the drain", drained, cmd)
			}
		})
	}
}

// TestRollbackDoesNotWaitForAPendingDrain: a rollback asked while a node
// waits for its evacuator ends at once; the node never gets a command.
func TestRollbackDoesNotWaitForAPendingDrain(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	putInventory(t, s.JS, "n1", libvirt("libvirt:v1"))
	fakeNode(t, s.JS, "n1", nil)
	startPlannerWith(t, s.JS, planner.Config{DrainTimeout: time.Hour})

	id := request(t, s.JS, map[string]string{"libvirt": "libvirt:v2"})
	eventually(t, 10*time.Second, "the drain request", func() bool { return len(h.of(events.TypeNodeDrainRequested)) == 1 })
	rollbackRequest(t, s.JS, id)
	waitPhase(t, s.JS, id, planner.PhaseRolledBack)
	if n := len(h.of(events.TypeNodeUpdateRequested)); n != 0 {
		t.Errorf("%d node commands, want 0", n)
	}
}
