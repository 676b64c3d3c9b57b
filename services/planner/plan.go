package planner

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// Plan is the result of planning: the event to publish and, per step (a
// node within a wave), the containers its node-updater must change.
type Plan struct {
	events.UpgradePlanned
	// Targets holds each step's containers to update, in update order,
	// keyed by StepKey(node, wave).
	Targets map[string][]events.ContainerTarget
	// Drain lists the steps whose node must be drained first.
	Drain map[string]bool
	// Migrations are the databases to migrate: one per service whose
	// operation is upgrade, in rollout order.
	Migrations []MigrationProgress
}

// StepKey names a node's part of one wave; a node appears in several waves
// when it runs services at several levels of the dependency order.
func StepKey(node string, wave int) string { return node + "@" + strconv.Itoa(wave) }

// Compute plans a release against the fleet the node-updaters report. It is
// deterministic: the same request and inventories give the same plan.
//
// Images come from the node-updaters (what really runs); rollout settings
// (max_unavailable, role serial, dependencies) come from inv when the
// planner has an inventory file, else every service rolls one instance at a
// time. Waves follow package plan: dependency levels, a canary of one
// instance per service, then doubling up to max_unavailable.
func Compute(req events.UpgradeRequested, fleet []events.NodeInventory, inv *inventory.Inventory) (Plan, error) {
	seen := map[string]bool{}
	for _, n := range fleet {
		for _, c := range n.Containers {
			seen[c.Service] = true
		}
	}
	var missing []string
	for svc := range req.Release.Services {
		if !seen[svc] {
			missing = append(missing, svc)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return Plan{}, fmt.Errorf("plan release %q: no running node-updater reports a container labelled %s=%s%s; check the service names in the release and that the node-updaters are up (cutover-nodes KV)",
			req.Release.Name, events.LabelService, strings.Join(missing, ","), plan.UnknownServices(missing, plan.FromFleet(fleet).Nodes))
	}
	in := plan.FromFleet(fleet)
	if inv != nil {
		fi := plan.FromInventory(inv)
		in.Services, in.MaxDrained = fi.Services, fi.MaxDrained
		in.OrderLike(inv)
	}
	built, err := plan.Build(plan.FromRequest(req), in)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{
		UpgradePlanned: events.UpgradePlanned{Release: req.Release.Name, Changes: []events.ContainerChange{}, Waves: []events.PlannedWave{}, Unchanged: built.Unchanged},
		Targets:        map[string][]events.ContainerTarget{}, Drain: map[string]bool{},
	}
	for _, n := range built.Nodes {
		for _, c := range n.Containers {
			if c.Change {
				p.Changes = append(p.Changes, events.ContainerChange{Node: n.Node, Container: c.Container, Service: c.Service, FromImage: c.FromImage, ToImage: c.ToImage, Reason: c.Reason})
			}
		}
	}
	for _, w := range built.Rollout() {
		pw := events.PlannedWave{Index: w.Index}
		for _, n := range w.Nodes {
			pw.Nodes = append(pw.Nodes, n.Node)
			p.Targets[StepKey(n.Node, w.Index)] = n.Targets
			if n.Drain {
				p.Drain[StepKey(n.Node, w.Index)] = true
			}
		}
		p.Waves = append(p.Waves, pw)
	}
	for _, sp := range built.Services {
		if sp.Operation != plan.OpUpgrade || inv == nil {
			continue
		}
		db := inv.Services[sp.Name].Database
		if db == nil {
			continue
		}
		p.Migrations = append(p.Migrations, MigrationProgress{
			Service: sp.Name, Driver: db.Driver, Database: db.URL, Source: db.Migrations, SnapshotMethod: db.SnapshotMethod, Fence: db.Fence,
			FromVersion: uint(sp.DatabaseVersion), ToVersion: uint(sp.MigrationsVersion),
			Expand: MigrationPending, Contract: MigrationPending,
			Commands: db.Commands, Image: sp.Image,
		})
	}
	return p, nil
}
