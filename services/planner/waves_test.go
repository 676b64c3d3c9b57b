package planner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner"
)

func startPlannerWith(t *testing.T, js jetstream.JetStream, cfg planner.Config) *planner.Planner {
	t.Helper()
	p, err := planner.New(t.Context(), cfg, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// maxDown replays the history: an instance of a service is down from the
// command that targets it until the node's answer to that command.
func maxDown(h *history, upgrade string) map[string]int {
	down, peak := map[string]int{}, map[string]int{}
	open := map[string][]string{} // command id -> services it took down
	for _, e := range h.All() {
		if events.UpgradeID(e) != upgrade {
			continue
		}
		switch e.Type() {
		case events.TypeNodeUpdateRequested:
			d, _ := events.DataAs[events.NodeUpdateRequested](e)
			seen := map[string]bool{}
			for _, c := range d.Containers {
				if c.Service != "" && !seen[c.Service] {
					seen[c.Service] = true
					down[c.Service]++
					peak[c.Service] = max(peak[c.Service], down[c.Service])
					open[e.ID()] = append(open[e.ID()], c.Service)
				}
			}
		case events.TypeNodeUpdateCompleted, events.TypeNodeUpdateFailed:
			for _, s := range open[events.CausationID(e)] {
				down[s]--
			}
			delete(open, events.CausationID(e))
		}
	}
	return peak
}

// TestWavesRespectMaxUnavailableAndDependencies runs a real upgrade over
// NATS with fake node-updaters and checks, from the event history alone,
// that no service ever had more than max_unavailable instances down, that
// waves did run several nodes at once, and that db finished before web began.
func TestWavesRespectMaxUnavailableAndDependencies(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	var nodes []string
	for i := 1; i <= 6; i++ {
		n := fmt.Sprintf("n%d", i)
		nodes = append(nodes, n)
		cs := []events.ObservedContainer{web("web-"+n, "web:v1")}
		if i <= 2 {
			cs = append(cs, events.ObservedContainer{Name: "db-" + n, Service: "db", Image: "db:1"})
		}
		putInventory(t, s.JS, n, cs...)
		// A node answers only once its whole wave was sent, so the
		// history shows every instance of a wave down at the same time.
		fakeNode(t, s.JS, n, func(d events.NodeUpdateRequested) bool {
			eventually(t, 10*time.Second, "wave.started", func() bool {
				for _, e := range h.of(events.TypeWaveStarted) {
					if w, _ := events.DataAs[events.WaveStarted](e); w.Wave == d.Wave {
						return true
					}
				}
				return false
			})
			return false
		})
	}
	inv := &inventory.Inventory{
		Nodes: map[string]inventory.Node{},
		Roles: map[string]inventory.Role{"r": {Services: []string{"web", "db"}}},
		Services: map[string]inventory.Service{
			"web": {MaxUnavailable: "2", DependsOn: []string{"db"}, Containers: []inventory.Container{{Name: "web", Image: "web:v1"}}},
			"db":  {Containers: []inventory.Container{{Name: "db", Image: "db:1"}}},
		},
	}
	for _, n := range nodes {
		inv.Nodes[n] = inventory.Node{Roles: []string{"r"}}
	}
	startPlannerWith(t, s.JS, planner.Config{Inventory: inv})

	id := request(t, s.JS, map[string]string{"web": "web:v2", "db": "db:2"})
	waitPhase(t, s.JS, id, planner.PhaseCompleted)
	eventually(t, 5*time.Second, "upgrade.completed in the history", func() bool { return len(h.of(events.TypeUpgradeCompleted)) == 1 })

	peak := maxDown(h, id)
	if peak["web"] != 2 || peak["db"] != 1 {
		t.Errorf("peak instances down = %v, want web 2 (its max_unavailable, reached) and db 1", peak)
	}
	// Dependency order: every db command answered before the first web command.
	dbOpen, webStarted := 0, false
	for _, e := range h.All() {
		if events.UpgradeID(e) != id {
			continue
		}
		if e.Type() == events.TypeNodeUpdateRequested {
			d, _ := events.DataAs[events.NodeUpdateRequested](e)
			switch d.Containers[0].Service {
			case "db":
				if webStarted {
					t.Errorf("db command to %s after web began", events.NodeID(e))
				}
				dbOpen++
			case "web":
				if dbOpen > 0 {
					t.Errorf("web command to %s while %d db commands are unanswered", events.NodeID(e), dbOpen)
				}
				webStarted = true
			}
		}
		if e.Type() == events.TypeNodeUpdateCompleted && strings.HasPrefix(events.NodeID(e), "n") {
			d, _ := events.DataAs[events.NodeUpdateCompleted](e)
			if strings.HasPrefix(d.Results[0].Container, "db-") {
				dbOpen--
			}
		}
	}
}

// TestSilentNodeFailsTheWaveAtTheDeadline: a node that never answers does
// not hang the upgrade: the wave fails with a reason naming the node, and
// the default failure_action rolls back the nodes already updated.
func TestSilentNodeFailsTheWaveAtTheDeadline(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
	putInventory(t, s.JS, "n2", web("web-2", "web:v1"))
	fakeNode(t, s.JS, "n1", nil) // n2 has no node-updater
	startPlannerWith(t, s.JS, planner.Config{ProgressDeadline: 500 * time.Millisecond})

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	u := waitPhase(t, s.JS, id, planner.PhaseRolledBack)
	if !strings.Contains(u.Reason, "n2: no answer") || !strings.Contains(u.Reason, "progress deadline") {
		t.Errorf("reason = %q, want n2 named with the progress deadline", u.Reason)
	}
	eventually(t, 5*time.Second, "rollback of n1", func() bool {
		for _, c := range h.of(events.TypeNodeUpdateRequested) {
			d, _ := events.DataAs[events.NodeUpdateRequested](c)
			if d.Rollback && events.NodeID(c) == "n1" {
				return true
			}
		}
		return false
	})
}
