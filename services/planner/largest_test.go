package planner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner"
)

// TestLargestPlannerEventFitsNATSDefault: the README says a 5,000-node
// upgrade stays within NATS's default 1 MB message size. The planner plans a
// 5,000-node × 20-container upgrade and runs its canary wave (one responder
// answers every node's command), then pauses (pause_after_canary: the whole
// run takes minutes at this size); every event it published is measured.
// The largest, a part of the plan, stays under events.MaxEventSize. The
// events that list a wave's nodes (wave.started, wave.completed) grow with
// the wave: measured here for the canary, they are about 15 bytes a node,
// under 80 KB for all 5,000. Encode refuses anything larger in any case.
func TestLargestPlannerEventFitsNATSDefault(t *testing.T) {
	const nodes, services = 5000, 20
	s := natstest.Start(t)
	inv := &inventory.Inventory{Nodes: map[string]inventory.Node{}, Roles: map[string]inventory.Role{}, Services: map[string]inventory.Service{}}
	rel := events.Release{Name: "big", Services: map[string]events.ServiceRelease{}}
	var svcs []string
	var containers []events.ObservedContainer
	for i := range services {
		name := fmt.Sprintf("svc%02d", i)
		svcs = append(svcs, name)
		inv.Services[name] = inventory.Service{MaxUnavailable: "50%", Containers: []inventory.Container{{Name: name, Image: "registry.example/kolla/" + name + ":1"}}}
		rel.Services[name] = events.ServiceRelease{Image: "registry.example/kolla/" + name + ":2"}
		containers = append(containers, events.ObservedContainer{Name: name, Service: name, Image: "registry.example/kolla/" + name + ":1", State: "running"})
	}
	inv.Roles["all"] = inventory.Role{Services: svcs}
	kv, err := s.JS.KeyValue(t.Context(), events.BucketNodes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		node := fmt.Sprintf("compute%04d", i)
		inv.Nodes[node] = inventory.Node{Roles: []string{"all"}}
		raw, _ := json.Marshal(events.NodeInventory{Node: node, Runtime: "fake", Containers: containers})
		if _, err := kv.Put(t.Context(), node, raw); err != nil {
			t.Fatal(err)
		}
	}
	// One responder for every node: answers each command with completion.
	natstest.AnswerNodes(t, s.JS, "fleet", "cutover.node.*.cmd", func(_ context.Context, d events.NodeUpdateRequested) (events.Data, error) {
		rs := make([]events.ContainerResult, 0, len(d.Containers))
		for _, target := range d.Containers {
			rs = append(rs, events.ContainerResult{Container: target.Container, Result: events.ResultReplaced, ToImage: target.Image})
		}
		return events.NodeUpdateCompleted{Wave: d.Wave, Rollback: d.Rollback, Results: rs}, nil
	})
	pub := events.NewPublisher(s.JS)
	startPlannerWith(t, s.JS, planner.Config{Inventory: inv, PollInterval: 100 * time.Millisecond})

	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: rel, PauseAfterCanary: true})
	if err := pub.Publish(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	var u *planner.Upgrade
	eventually(t, 3*time.Minute, "the 5,000-node upgrade to pause after its canary", func() bool {
		u, err = planner.LoadUpgrade(t.Context(), s.JS, req.ID())
		return err == nil && (u.Phase == planner.PhasePaused || u.Final()) && len(u.Outbox) == 0
	})
	if u.Phase != planner.PhasePaused {
		t.Fatalf("upgrade %s: %s, want paused after the canary", u.Phase, u.Reason)
	}

	// Every message the planner published, measured as NATS counts it.
	cons, err := s.JS.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	largest := map[string]int{}
	var biggest, bigType string
	var biggestN int
	batch, err := cons.FetchNoWait(int(info.NumPending))
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for m := range batch.Messages() {
		seen++
		e, err := events.Decode(m.Headers(), m.Data())
		if err != nil || e.Source() != events.Source("planner", "") {
			continue
		}
		n := len(m.Data())
		for k, vs := range m.Headers() {
			for _, v := range vs {
				n += len(k) + len(v) + 4
			}
		}
		if n > largest[e.Type()] {
			largest[e.Type()] = n
		}
		if n > biggestN {
			biggest, bigType, biggestN = e.ID(), e.Type(), n
		}
	}
	if seen != int(info.NumPending) {
		t.Fatalf("read %d of %d messages", seen, info.NumPending)
	}
	t.Logf("largest planner event at %d nodes × %d containers: %s %s, %d bytes (limit %d); per type %v", nodes, services, bigType, biggest, biggestN, events.MaxEventSize, largest)
	if bigType != events.TypeUpgradePlanned || largest[events.TypeWaveCompleted] == 0 {
		t.Errorf("measured %v: want the plan's parts and a completed wave", largest)
	}
	if biggestN == 0 || biggestN > events.MaxEventSize {
		t.Errorf("largest planner event is %d bytes, want 1..%d", biggestN, events.MaxEventSize)
	}
}
