package plan_test

import (
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
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

// TestRequestKeepsPerContainerImages: a release's per-container images
// (kolla's keystone_ssh, keystone_fernet, keystone run three images) reach
// the targets when the plan is made from the upgrade request, as the live
// planner makes it, not only in the dry run.
func TestRequestKeepsPerContainerImages(t *testing.T) {
	req := events.UpgradeRequested{Release: events.Release{Name: "p1", Services: map[string]events.ServiceRelease{
		"keystone": {Image: "kolla/keystone:p1", Images: map[string]string{"keystone_ssh": "kolla/keystone-ssh:p1"}},
	}}}
	fleet := []events.NodeInventory{{Node: "n1", Containers: []events.ObservedContainer{
		{Name: "keystone_ssh", Service: "keystone", Image: "kolla/keystone-ssh:p0"},
		{Name: "keystone", Service: "keystone", Image: "kolla/keystone:p0"},
	}}}
	p, err := plan.Build(plan.FromRequest(req), plan.FromFleet(fleet))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, w := range p.Rollout() {
		for _, n := range w.Nodes {
			for _, tg := range n.Targets {
				got[tg.Container] = tg.Image
			}
		}
	}
	if got["keystone_ssh"] != "kolla/keystone-ssh:p1" || got["keystone"] != "kolla/keystone:p1" {
		t.Errorf("targets %v, want keystone_ssh on its own image", got)
	}
}

// TestOrderLikeTheInventory: a live plan (from the fleet) updates a
// service's containers in the inventory's order, not by name.
func TestOrderLikeTheInventory(t *testing.T) {
	inv := &inventory.Inventory{
		Nodes: map[string]inventory.Node{"n1": {Roles: []string{"c"}}},
		Roles: map[string]inventory.Role{"c": {Services: []string{"keystone"}}},
		Services: map[string]inventory.Service{"keystone": {Containers: []inventory.Container{
			{Name: "keystone_ssh", Image: "a:1"}, {Name: "keystone_fernet", Image: "b:1"}, {Name: "keystone", Image: "c:1"}}}},
	}
	in := plan.FromFleet([]events.NodeInventory{{Node: "n1", Containers: []events.ObservedContainer{
		{Name: "keystone", Service: "keystone", Image: "c:1"}, {Name: "keystone_fernet", Service: "keystone", Image: "b:1"},
		{Name: "extra", Service: "keystone", Image: "x:1"}, {Name: "keystone_ssh", Service: "keystone", Image: "a:1"}}}})
	in.OrderLike(inv)
	p, err := plan.Build(plan.FromRequest(events.UpgradeRequested{Release: events.Release{Name: "r", Services: map[string]events.ServiceRelease{"keystone": {Image: "new:2"}}}}), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range p.Rollout()[0].Nodes[0].Targets {
		got = append(got, tg.Container)
	}
	if want := []string{"keystone_ssh", "keystone_fernet", "keystone", "extra"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
