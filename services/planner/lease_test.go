package planner_test

import (
	"context"
	"log/slog"
	"strings"
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
	return loggedReplica(t, s, name, nil)
}

// loggedReplica is replica with a logger (nil: slog's default).
func loggedReplica(t *testing.T, s *natstest.Server, name string, log *slog.Logger) (*planner.Planner, *nats.Conn) {
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
	p, err := planner.New(t.Context(), planner.Config{InstanceID: name, LeaseTTL: time.Second, LeaseRefresh: 100 * time.Millisecond, AckWait: 2 * time.Second, Logger: log}, js)
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

// TestTwoProcessesWithOneInstanceNameDoNotShareTheLease: two planner
// processes mistakenly given the same --instance. The second must stand by
// (each took the lease from the other as its own before, and both led by
// turns), say why, and take over only once the first is gone.
func TestTwoProcessesWithOneInstanceNameDoNotShareTheLease(t *testing.T) {
	s := natstest.Start(t)
	first, firstConn := replica(t, s, "planner-a")
	var logs natstest.Logs
	second, _ := loggedReplica(t, s, "planner-a", logs.Logger())
	if second.Leading() {
		t.Fatal("the second process took the lease its twin holds")
	}
	// Several of the first's refreshes later, still one leader: the first.
	locks, err := s.JS.KeyValue(t.Context(), "cutover-locks")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := locks.Get(t.Context(), planner.LeaseKey)
	if err != nil {
		t.Fatal(err)
	}
	start := entry.Revision()
	eventually(t, 10*time.Second, "five more refreshes of the lease", func() bool {
		e, err := locks.Get(t.Context(), planner.LeaseKey)
		if err == nil && (second.Leading() || !first.Leading()) {
			t.Fatalf("first leads %v, second leads %v at lease revision %d: the twins swapped the lease", first.Leading(), second.Leading(), e.Revision())
		}
		return err == nil && e.Revision() >= start+5
	})
	if !strings.Contains(logs.String(), "give each planner its own --instance") {
		t.Errorf("no warning naming the shared instance name; logs:\n%s", logs.String())
	}
	first.Crash()
	firstConn.Close()
	eventually(t, 10*time.Second, "the second to take over once the first is gone", second.Leading)
}
