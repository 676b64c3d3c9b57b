package planner_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/planner"
)

// replica starts a planner on its own NATS connection, as a separate
// process would have.
func replica(t *testing.T, s *natstest.Server, name string) (*planner.Planner, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.New(t.Context(), planner.Config{InstanceID: name, LeaseTTL: time.Second, LeaseRefresh: 100 * time.Millisecond, AckWait: 2 * time.Second}, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p, nc
}

// TestStandbyTakesOverWithoutRepeatingAStep kills the leader while a wave
// is in flight: the standby, which did nothing while the leader lived,
// takes the lease and finishes the upgrade, and every node got exactly one
// command (counted from the stream's history).
func TestStandbyTakesOverWithoutRepeatingAStep(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	webNodes(t, s, "n1", "n2", "n3")
	leader, leaderConn := replica(t, s, "planner-a")
	standby, _ := replica(t, s, "planner-b")
	if !leader.Leading() || standby.Leading() {
		t.Fatalf("leading: a=%v b=%v; want only the first replica", leader.Leading(), standby.Leading())
	}
	var crashed atomic.Bool
	fakeNode(t, s.JS, "n1", nil)
	gatedNode(t, s.JS, "n2", crashed.Load, nil) // answers only once the leader is dead
	fakeNode(t, s.JS, "n3", nil)

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	eventually(t, 10*time.Second, "command to n2", func() bool { return h.commandsTo(id)["n2"] == 1 })
	if standby.Leading() {
		t.Fatal("the standby leads while the leader lives")
	}
	leader.Crash()
	leaderConn.Close()
	crashed.Store(true)

	start := time.Now()
	eventually(t, 10*time.Second, "the standby to take over", standby.Leading)
	t.Logf("standby took over %v after the leader died (lease TTL 1s)", time.Since(start).Round(10*time.Millisecond))
	waitPhase(t, s.JS, id, planner.PhaseCompleted)
	if got := h.commandsTo(id); got["n1"] != 1 || got["n2"] != 1 || got["n3"] != 1 {
		t.Errorf("commands per node = %v, want exactly 1 each", got)
	}
}
