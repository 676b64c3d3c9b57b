package plan_test

import (
	"fmt"
	"runtime"
	"sort"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// fleet generates an inventory of nodes nodes and 50 services: five roles
// of ten services each (a dependency chain per role), 3 controllers, 1%
// network, 1% storage, 1% monitoring, the rest computes.
func fleet(nodes int) (*inventory.Inventory, plan.Release) {
	inv := &inventory.Inventory{Nodes: map[string]inventory.Node{}, Roles: map[string]inventory.Role{}, Services: map[string]inventory.Service{}}
	rel := plan.Release{Name: "bench", Services: map[string]plan.Target{}}
	roles := []string{"controller", "network", "storage", "monitoring", "compute"}
	for r, role := range roles {
		var svcs []string
		for i := range 10 {
			s := fmt.Sprintf("%s-svc%02d", role, i)
			svcs = append(svcs, s)
			svc := inventory.Service{Containers: []inventory.Container{{Name: s, Image: s + ":1", Env: map[string]string{"LOG": "info"}}}}
			if i > 0 {
				svc.DependsOn = []string{fmt.Sprintf("%s-svc%02d", role, i-1)}
			}
			if r == 0 && i == 0 {
				svc.Database = &inventory.Database{Driver: "postgres", URL: "postgres://db", Migrations: "/m", Version: 3}
			}
			inv.Services[s] = svc
			rel.Services[s] = plan.Target{ServiceRelease: events.ServiceRelease{Image: s + ":2"}, MigrationsVersion: 4}
		}
		inv.Roles[role] = inventory.Role{Services: svcs}
	}
	small := max(1, nodes/100)
	counts := []int{3, small, small, small, nodes - 3 - 3*small}
	for r, role := range roles {
		for i := range counts[r] {
			inv.Nodes[fmt.Sprintf("%s%05d", role, i)] = inventory.Node{Roles: []string{role}}
		}
	}
	return inv, rel
}

// baseline is the issue-2 planner's algorithm: every changed container, one
// node per wave in name order, no dependency order or max_unavailable.
func baseline(rel plan.Release, in plan.Input) []events.PlannedWave {
	sort.Slice(in.Nodes, func(i, j int) bool { return in.Nodes[i].Name < in.Nodes[j].Name })
	var waves []events.PlannedWave
	for _, n := range in.Nodes {
		changed := false
		for _, c := range n.Containers {
			if t, ok := rel.Services[c.Service]; ok && t.Image != c.Image {
				changed = true
			}
		}
		if changed {
			waves = append(waves, events.PlannedWave{Index: len(waves), Nodes: []string{n.Name}})
		}
	}
	return waves
}

// BenchmarkPlan10k plans a 10,000-node, 50-service fleet: the cutover
// planner (placement from roles, reasons, DAG levels, growing waves under
// max_unavailable) against the issue-2 baseline (one node per wave).
// Targets: under 1 s and under 500 MB.
func BenchmarkPlan10k(b *testing.B) {
	inv, rel := fleet(10000)
	b.Run("cutover", func(b *testing.B) {
		var peak uint64
		var waves int
		for b.Loop() {
			p, err := plan.Build(rel, plan.FromInventory(inv))
			if err != nil {
				b.Fatal(err)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			waves = len(p.Rollout())
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(waves), "waves")
	})
	b.Run("baseline-issue2", func(b *testing.B) {
		var peak uint64
		var waves int
		for b.Loop() {
			w := baseline(rel, plan.FromInventory(inv))
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			waves = len(w)
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(waves), "waves")
	})
}

// TestGeneratedFleetInvariants runs the plan invariants on a generated
// fleet (smaller than the benchmark's, to stay quick).
func TestGeneratedFleetInvariants(t *testing.T) {
	inv, rel := fleet(500)
	p, err := plan.Build(rel, plan.FromInventory(inv))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, p)
}
