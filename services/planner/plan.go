package planner

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/events"
)

// Plan is the result of planning: the event to publish and, per node, the
// containers its node-updater must change.
type Plan struct {
	events.UpgradePlanned
	// Targets holds each node's containers to update, in update order.
	Targets map[string][]events.ContainerTarget
}

// Compute plans a release against the fleet the node-updaters report. It is
// deterministic: the same request and inventories give the same plan.
//
// A container changes when its service is in the release and its image
// reference differs from the target. Nodes are updated one per wave in name
// order, the conservative default for an unknown topology (issue 5 adds
// per-service max_unavailable, canaries and dependency order).
func Compute(req events.UpgradeRequested, fleet []events.NodeInventory) (Plan, error) {
	p := Plan{UpgradePlanned: events.UpgradePlanned{Release: req.Release.Name, Changes: []events.ContainerChange{}, Waves: []events.PlannedWave{}}, Targets: map[string][]events.ContainerTarget{}}
	sort.Slice(fleet, func(i, j int) bool { return fleet[i].Node < fleet[j].Node })
	seen := map[string]int{}
	for _, inv := range fleet {
		containers := append([]events.ObservedContainer(nil), inv.Containers...)
		sort.Slice(containers, func(i, j int) bool { return containers[i].Name < containers[j].Name })
		for _, c := range containers {
			target, ok := req.Release.Services[c.Service]
			if !ok {
				continue
			}
			seen[c.Service]++
			if c.Image == target.Image {
				p.Unchanged++
				continue
			}
			p.Changes = append(p.Changes, events.ContainerChange{
				Node: inv.Node, Container: c.Name, Service: c.Service,
				FromImage: c.Image, ToImage: target.Image, Reason: "image differs",
			})
			p.Targets[inv.Node] = append(p.Targets[inv.Node], events.ContainerTarget{
				Container: c.Name, Service: c.Service, Image: target.Image, Strategy: target.Strategy,
				MinHealthyMs: target.MinHealthyMs, HealthTimeoutMs: target.HealthTimeoutMs,
			})
		}
	}
	var missing []string
	for svc := range req.Release.Services {
		if seen[svc] == 0 {
			missing = append(missing, svc)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return Plan{}, fmt.Errorf("plan release %q: no running node-updater reports a container labelled %s=%s; check the service names in the release and that the node-updaters are up (cutover-nodes KV)",
			req.Release.Name, events.LabelService, strings.Join(missing, ","))
	}
	nodes := make([]string, 0, len(p.Targets))
	for n := range p.Targets {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for i, n := range nodes {
		p.Waves = append(p.Waves, events.PlannedWave{Index: i, Nodes: []string{n}})
	}
	return p, nil
}
