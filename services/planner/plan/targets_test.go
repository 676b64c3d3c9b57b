package plan_test

import (
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// TestTargetsCarryTheServiceSettings checks that what a release sets per
// service (strategy, health, drain acknowledgement, probe) reaches the
// node-updaters' container targets.
func TestTargetsCarryTheServiceSettings(t *testing.T) {
	probe := &events.Probe{Type: events.ProbeTCP, Port: 5432}
	req := events.UpgradeRequested{Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{
		"web": {Image: "web:2", Strategy: "start-first", MinHealthyMs: 700, DrainAckTimeoutMs: 9000, DrainAckRequired: true, Probe: probe},
	}}}
	fleet := []events.NodeInventory{{Node: "n1", Containers: []events.ObservedContainer{{Name: "web-1", Service: "web", Image: "web:1"}}}}
	p, err := plan.Build(plan.FromRequest(req), plan.FromFleet(fleet))
	if err != nil {
		t.Fatal(err)
	}
	var got []events.ContainerTarget
	for _, ph := range p.Phases {
		for _, w := range ph.Waves {
			for _, n := range w.Nodes {
				got = append(got, n.Targets...)
			}
		}
	}
	if len(got) != 1 {
		t.Fatalf("targets = %+v, want one", got)
	}
	want := events.ContainerTarget{Container: "web-1", Service: "web", Image: "web:2", Strategy: "start-first", MinHealthyMs: 700, DrainAckTimeoutMs: 9000, DrainAckRequired: true, Probe: probe}
	if g := got[0]; g.Container != want.Container || g.Image != want.Image || g.Strategy != want.Strategy || g.MinHealthyMs != want.MinHealthyMs ||
		g.DrainAckTimeoutMs != want.DrainAckTimeoutMs || !g.DrainAckRequired || g.Probe != probe {
		t.Errorf("target = %+v, want %+v", g, want)
	}
}
