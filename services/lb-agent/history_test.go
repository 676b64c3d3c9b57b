package lbagent_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
)

// recordingLB is a load balancer that records which containers' servers it drained.
type recordingLB struct {
	mu      sync.Mutex
	drained []string
}

func (r *recordingLB) Drain(_ context.Context, _, server string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drained = append(r.drained, server)
	return nil
}

func (r *recordingLB) SetState(context.Context, string, string, string) error { return nil }

func (r *recordingLB) Drained() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.drained)
}

func draining(node, container string) events.Event {
	return events.MustNew(events.Source("node-updater", node), events.ContainerDraining{Container: container}, events.WithNode(node))
}

// publishedBefore publishes e and waits until the clock has passed the
// time the stream stored it, so an agent started afterwards with a tiny
// lookback starts after it.
func publishedBefore(t *testing.T, s *natstest.Server, e events.Event) {
	t.Helper()
	natstest.Publish(t, s.JS, e)
	stream, err := s.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(t.Context(), events.NodeStatusSubject(events.NodeID(e)))
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 5*time.Second, "the clock past the stored event", func() bool { return time.Now().After(msg.Time) })
}

var historyServers = map[string]lbagent.Server{"web-1": {Backend: "web", Server: "s1"}, "web-2": {Backend: "web", Server: "s2"}, "web-3": {Backend: "web", Server: "s3"}}

// TestAgentFirstStartSkipsOldDrainRequests: an lb-agent started for the
// first time on a cluster with a history must not drain servers for past
// upgrades' requests (each would also be acknowledged to nobody and, with no
// socket, end in a rejection); it acts on requests from its lookback on.
func TestAgentFirstStartSkipsOldDrainRequests(t *testing.T) {
	s := natstest.Start(t)
	publishedBefore(t, s, draining("node1", "web-1"))
	lb := &recordingLB{}
	agent, err := lbagent.New(lbagent.Config{Servers: historyServers, Lookback: time.Nanosecond}, s.JS, lb)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, agent, 10*time.Second)
	natstest.Publish(t, s.JS, draining("node1", "web-2"))
	natstest.Eventually(t, 15*time.Second, "the new drain request handled", func() bool { return slices.Contains(lb.Drained(), "s2") })
	if got := lb.Drained(); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("drained %v on a first start, want only [s2]: the request older than the lookback is history", got)
	}
}

// TestAgentStartedMidUpgradeActsOnTheWaitingRequest: a drain request
// published just before the agent's first start (its node-updater is still
// waiting for the acknowledgement) is acted on.
func TestAgentStartedMidUpgradeActsOnTheWaitingRequest(t *testing.T) {
	s := natstest.Start(t)
	acks := subscribeAcks(t, s, "node1")
	req := draining("node1", "web-1")
	natstest.Publish(t, s.JS, req)
	lb := &recordingLB{}
	agent, err := lbagent.New(lbagent.Config{Servers: historyServers}, s.JS, lb)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, agent, 10*time.Second)
	select {
	case ack := <-acks:
		if events.CausationID(ack) != req.ID() {
			t.Errorf("ack answers %s, want %s", events.CausationID(ack), req.ID())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("no acknowledgement of the request published before the start; drained %v", lb.Drained())
	}
}

// TestAgentRestartResumesWhereItStopped: a restart (of an agent created
// with a lookback, or of one whose durable an older version created to
// deliver everything) handles what was published while it was down, and
// nothing twice.
func TestAgentRestartResumesWhereItStopped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(t *testing.T, s *natstest.Server, lb *recordingLB)
	}{
		{"created with a lookback", func(t *testing.T, s *natstest.Server, lb *recordingLB) {
			agent, err := lbagent.New(lbagent.Config{Servers: historyServers, Lookback: time.Nanosecond}, s.JS, lb)
			if err != nil {
				t.Fatal(err)
			}
			if err := agent.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			natstest.Publish(t, s.JS, draining("node1", "web-1"))
			natstest.Eventually(t, 15*time.Second, "the first request handled", func() bool { return len(lb.Drained()) == 1 })
			if err := agent.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
		{"created by an older version (deliver all)", func(t *testing.T, s *natstest.Server, lb *recordingLB) {
			c, err := events.Consume(t.Context(), s.JS, events.ConsumerConfig{Durable: lbagent.DefaultName, FilterSubjects: []string{events.SubjectNodeStatusAll}},
				func(context.Context, events.Event) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t)
			lb := &recordingLB{}
			tc.first(t, s, lb)
			before := len(lb.Drained())
			publishedBefore(t, s, draining("node1", "web-3"))
			agent, err := lbagent.New(lbagent.Config{Servers: historyServers, Lookback: time.Nanosecond}, s.JS, lb)
			if err != nil {
				t.Fatal(err)
			}
			natstest.Serve(t, agent, 10*time.Second)
			natstest.Eventually(t, 15*time.Second, "the request published while down handled", func() bool { return slices.Contains(lb.Drained(), "s3") })
			if got := lb.Drained()[before:]; !slices.Equal(got, []string{"s3"}) {
				t.Errorf("after the restart drained %v, want [s3]", got)
			}
		})
	}
}
