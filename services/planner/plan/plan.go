package plan

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner/manifest"
)

// Operations on a service.
const (
	OpUpdate    = "update"    // new images, no schema change
	OpUpgrade   = "upgrade"   // migrations run first (expand) and last (contract)
	OpUnchanged = "unchanged" // every instance already runs the target
)

// Input is the fleet as the planner sees it, whatever its source.
type Input struct {
	// Nodes are the nodes and the containers each runs now.
	Nodes []Node
	// Services holds per-service settings; a service without an entry gets defaults.
	Services map[string]ServiceSpec
	// MaxDrained bounds the nodes one wave drains (a count or a percent of
	// the nodes whose workload host changes); empty means DefaultMaxDrained.
	MaxDrained string
}

// DefaultMaxDrained is the share of workload hosts one wave may drain when
// the inventory sets no max_drained: 5%, and never fewer than one node.
var DefaultMaxDrained = inventory.Amount{N: 5, Percent: true}

// Node is one node and its containers.
type Node struct {
	Name       string
	Containers []Container
}

// Container is one container as it runs now.
type Container struct {
	Name         string
	Service      string
	Image        string
	Env          map[string]string
	WorkloadHost bool
}

// ServiceSpec holds a service's rollout settings from the inventory.
type ServiceSpec struct {
	// MaxUnavailable is a count or percent; empty means Serial.
	MaxUnavailable string
	// Serial is the default from the roles that place the service (TripleO's: 1, computes 25%).
	Serial inventory.Amount
	// DependsOn names services rolled first.
	DependsOn []string
	// Database says the service has a database at DatabaseVersion.
	Database        bool
	DatabaseVersion int
	// DatabaseCommands says the database migrates with commands (db_sync),
	// which any new image of the service runs: no version to compare.
	DatabaseCommands bool
	// PerHost marks a daemon serving only its own host: on a node whose
	// other services the wave already updates it does not count against
	// its max_unavailable.
	PerHost bool
}

// Release is the target: per service its image and planning inputs.
type Release struct {
	Name     string
	Services map[string]Target
}

// Target is one service's target.
type Target struct {
	events.ServiceRelease
	Env               map[string]string
	MigrationsVersion int
	MaxUnavailable    string
	DependsOn         []string
	// Images overrides Image per container name.
	Images map[string]string
}

// imageFor returns the target image of one container of the service.
func (t Target) imageFor(container string) string {
	if img, ok := t.Images[container]; ok {
		return img
	}
	return t.Image
}

// Plan is an explained rollout plan.
type Plan struct {
	Release string `json:"release"`
	// Warnings are what an operator must know before applying: services
	// whose only instance goes down while it is replaced, an all-in-one.
	Warnings  []string      `json:"warnings,omitempty"`
	Services  []ServicePlan `json:"services"`
	Nodes     []NodePlan    `json:"nodes"`
	Phases    []Phase       `json:"phases"`
	Changed   int           `json:"changed"`
	Unchanged int           `json:"unchanged"`
}

// ServicePlan says what happens to one released service, in rollout order.
type ServicePlan struct {
	Name              string   `json:"name"`
	Operation         string   `json:"operation"`
	Reason            string   `json:"reason"`
	Level             int      `json:"level"`
	DependsOn         []string `json:"depends_on,omitempty"`
	Instances         int      `json:"instances"`
	Changing          int      `json:"changing"`
	MaxUnavailable    int      `json:"max_unavailable"`
	DatabaseVersion   int      `json:"database_version,omitempty"`
	MigrationsVersion int      `json:"migrations_version,omitempty"`
	Image             string   `json:"image"`
	// Outage says the service has a single instance: replacing it is a
	// full outage of the service.
	Outage bool `json:"outage,omitempty"`
	// PerHost says the service is a per-host daemon: where it rides along
	// with a node's other services it does not count against MaxUnavailable.
	PerHost bool `json:"per_host,omitempty"`
}

// NodePlan lists one node's containers of released services.
type NodePlan struct {
	Node       string          `json:"node"`
	Containers []ContainerPlan `json:"containers"`
}

// ContainerPlan is one container's change and the reason for it.
type ContainerPlan struct {
	Container    string `json:"container"`
	Service      string `json:"service"`
	Change       bool   `json:"change"`
	FromImage    string `json:"from_image"`
	ToImage      string `json:"to_image"`
	Reason       string `json:"reason"`
	WorkloadHost bool   `json:"workload_host,omitempty"`
}

// Phase names.
const (
	PhasePreChecks = "pre-checks"
	PhaseExpand    = "expand"
	PhaseRollout   = "rollout"
	PhaseContract  = "contract"
	PhaseVerify    = "verify"
)

// Phase is one phase of the plan; rollout has waves, the others steps.
type Phase struct {
	Name  string `json:"name"`
	Steps []Step `json:"steps,omitempty"`
	Waves []Wave `json:"waves,omitempty"`
}

// Step is one action of a non-rollout phase.
type Step struct {
	Service string `json:"service,omitempty"`
	Action  string `json:"action"`
	Detail  string `json:"detail"`
}

// Wave is a set of nodes updated together; for each service it holds at
// most that service's max_unavailable instances, and at most the plan's
// max_drained drained nodes. A canary wave holds the first instance of
// the services it names in CanaryOf and nothing beyond one instance of them.
type Wave struct {
	Index    int        `json:"index"`
	Level    int        `json:"level"`
	Canary   bool       `json:"canary,omitempty"`
	CanaryOf []string   `json:"canary_of,omitempty"`
	Services []string   `json:"services"`
	Nodes    []WaveNode `json:"nodes"`
}

// WaveNode is one node's command within a wave.
type WaveNode struct {
	Node string `json:"node"`
	// Drain says a workload host changes: the node is drained first.
	Drain   bool                     `json:"drain,omitempty"`
	Targets []events.ContainerTarget `json:"targets"`
}

// Rollout returns the rollout phase's waves.
func (p *Plan) Rollout() []Wave {
	for _, ph := range p.Phases {
		if ph.Name == PhaseRollout {
			return ph.Waves
		}
	}
	return nil
}

// FromManifest converts a parsed release manifest.
func FromManifest(m manifest.Release) Release {
	r := Release{Name: m.Request.Release.Name, Services: map[string]Target{}}
	for name, sr := range m.Request.Release.Services {
		s := m.Services[name]
		r.Services[name] = Target{ServiceRelease: sr, Env: s.Env, MigrationsVersion: s.MigrationsVersion, MaxUnavailable: s.MaxUnavailable, DependsOn: s.DependsOn, Images: s.Images}
	}
	return r
}

// FromRequest converts an upgrade request (no planning inputs beyond images).
func FromRequest(req events.UpgradeRequested) Release {
	r := Release{Name: req.Release.Name, Services: map[string]Target{}}
	for name, sr := range req.Release.Services {
		r.Services[name] = Target{ServiceRelease: sr, MigrationsVersion: int(sr.MigrationsVersion), Images: sr.Images}
	}
	return r
}

// FromInventory places each role's services' containers on its nodes.
func FromInventory(inv *inventory.Inventory) Input {
	in := Input{Services: map[string]ServiceSpec{}}
	serial := map[string]inventory.Amount{}
	for _, n := range inv.NodeNames() {
		node := Node{Name: n}
		for _, c := range inv.ContainersOf(n) { // with the node's images overrides
			node.Containers = append(node.Containers, Container{Name: c.Name, Service: c.Service, Image: c.Image, Env: c.Env, WorkloadHost: c.WorkloadHost})
		}
		for _, r := range inv.Nodes[n].Roles {
			a := inv.Serial(r)
			for _, s := range inv.Roles[r].Services {
				// The most careful role wins: a count beats a percentage
				// only when smaller, which Of decides per service later.
				if cur, ok := serial[s]; !ok || stricter(a, cur) {
					serial[s] = a
				}
			}
		}
		in.Nodes = append(in.Nodes, node)
	}
	for name, s := range inv.Services {
		spec := ServiceSpec{MaxUnavailable: s.MaxUnavailable, Serial: serial[name], DependsOn: s.DependsOn, PerHost: s.PerHost}
		if spec.Serial.N == 0 {
			spec.Serial = inventory.Amount{N: 1}
		}
		if s.Database != nil {
			spec.Database, spec.DatabaseVersion = true, s.Database.Version
			spec.DatabaseCommands = s.Database.Commands != nil
		}
		in.Services[name] = spec
	}
	in.MaxDrained = inv.MaxDrained
	return in
}

func stricter(a, b inventory.Amount) bool {
	if a.Percent == b.Percent {
		return a.N < b.N
	}
	return !a.Percent // a count is the more careful default
}

// FromFleet builds an input from what the node-updaters report in the
// cutover-nodes bucket: no roles, so every service defaults to one
// instance at a time.
func FromFleet(fleet []events.NodeInventory) Input {
	in := Input{Services: map[string]ServiceSpec{}}
	for _, inv := range fleet {
		n := Node{Name: inv.Node}
		for _, c := range inv.Containers {
			if c.Service == "" {
				continue
			}
			n.Containers = append(n.Containers, Container{Name: c.Name, Service: c.Service, Image: c.Image, WorkloadHost: c.WorkloadHost})
		}
		// The fleet has no update order: by name, so plans are stable.
		sort.Slice(n.Containers, func(i, j int) bool { return n.Containers[i].Name < n.Containers[j].Name })
		in.Nodes = append(in.Nodes, n)
	}
	return in
}

// OrderLike puts each node's containers in the order the inventory
// places them (service by service, each service's containers in update
// order: keystone_ssh, keystone_fernet, keystone), so a live plan updates
// them as the dry run does. Containers the inventory does not place keep
// their order after those it does.
func (in *Input) OrderLike(inv *inventory.Inventory) {
	for i := range in.Nodes {
		rank := map[string]int{}
		for j, c := range inv.ContainersOf(in.Nodes[i].Name) {
			rank[c.Name] = j + 1
		}
		cs := in.Nodes[i].Containers
		sort.SliceStable(cs, func(a, b int) bool {
			ra, rb := rank[cs[a].Name], rank[cs[b].Name]
			if ra == 0 || rb == 0 {
				return ra != 0 && rb == 0
			}
			return ra < rb
		})
	}
}

// Build plans rel against in. It fails when a released service runs on no
// node, or when dependencies form a cycle (the error names it).
func Build(rel Release, in Input) (*Plan, error) {
	p := &Plan{Release: rel.Name, Services: []ServicePlan{}, Nodes: []NodePlan{}}
	nodes := slices.Clone(in.Nodes)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })

	st := map[string]*svcState{}
	for s := range rel.Services {
		st[s] = &svcState{}
	}
	var changed []nodeChange
	for _, n := range nodes {
		np := NodePlan{Node: n.Name}
		nc := nodeChange{node: n.Name}
		cs := slices.Clone(n.Containers)
		// By service; within a service the containers keep the input's
		// order, which is the inventory's update order (keystone_ssh,
		// keystone_fernet, keystone).
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].Service < cs[j].Service })
		seen := map[string]bool{}
		for _, c := range cs {
			t, ok := rel.Services[c.Service]
			if !ok {
				continue // only released services placed on the node are touched
			}
			if !seen[c.Service] {
				seen[c.Service] = true
				st[c.Service].instances++
			}
			img := t.imageFor(c.Name)
			cp := ContainerPlan{Container: c.Name, Service: c.Service, FromImage: c.Image, ToImage: img, WorkloadHost: c.WorkloadHost}
			var why []string
			if c.Image != img {
				why = append(why, "image differs")
			}
			if keys := envDiff(c.Env, t.Env); len(keys) > 0 {
				why = append(why, "config changed: env "+strings.Join(keys, ", "))
			}
			if len(why) == 0 {
				cp.Reason = "unchanged"
				p.Unchanged++
			} else {
				cp.Change = true
				if c.WorkloadHost {
					why = append(why, "workload host: node is drained first")
					if nc.drain == nil {
						nc.drain = map[string]bool{}
					}
					nc.drain[c.Service] = true
				}
				cp.Reason = strings.Join(why, "; ")
				p.Changed++
				if nc.targets == nil {
					nc.targets = map[string][]events.ContainerTarget{}
				}
				nc.targets[c.Service] = append(nc.targets[c.Service], events.ContainerTarget{
					Container: c.Name, Service: c.Service, Image: img, Strategy: t.Strategy,
					MinHealthyMs: t.MinHealthyMs, HealthTimeoutMs: t.HealthTimeoutMs,
					DrainAckTimeoutMs: t.DrainAckTimeoutMs, DrainAckRequired: t.DrainAckRequired, Probe: t.Probe,
				})
			}
			np.Containers = append(np.Containers, cp)
		}
		for s := range nc.targets {
			st[s].changing++
		}
		if len(np.Containers) > 0 {
			p.Nodes = append(p.Nodes, np)
		}
		if len(nc.targets) > 0 {
			changed = append(changed, nc)
		}
	}
	var missing []string
	for s, x := range st {
		if x.instances == 0 {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("plan release %q: no node runs service %s%s; check the service names in the release against the inventory", rel.Name, strings.Join(missing, ", "), UnknownServices(missing, in.Nodes))
	}

	deps := map[string][]string{}
	for s, t := range rel.Services {
		var d []string
		for _, x := range append(slices.Clone(in.Services[s].DependsOn), t.DependsOn...) {
			if _, ok := rel.Services[x]; ok && !slices.Contains(d, x) {
				d = append(d, x)
			}
		}
		sort.Strings(d)
		deps[s] = d
	}
	levels, err := levelsOf(deps)
	if err != nil {
		return nil, fmt.Errorf("plan release %q: %w; remove one of these depends_on entries", rel.Name, err)
	}
	names := slices.Sorted(maps.Keys(rel.Services))
	sort.SliceStable(names, func(i, j int) bool { return levels[names[i]] < levels[names[j]] })
	var upgrades []ServicePlan
	for _, s := range names {
		t, spec, x := rel.Services[s], in.Services[s], st[s]
		amount := spec.Serial
		if amount.N == 0 {
			amount = inventory.Amount{N: 1}
		}
		for _, mu := range []string{spec.MaxUnavailable, t.MaxUnavailable} {
			if a, err := inventory.ParseAmount(mu); err == nil {
				amount = a
			}
		}
		x.maxU, x.level = amount.Of(x.instances), levels[s]
		sp := ServicePlan{Name: s, Level: x.level, DependsOn: deps[s], Instances: x.instances, Changing: x.changing, MaxUnavailable: x.maxU, Image: t.Image}
		if spec.Database {
			sp.DatabaseVersion = spec.DatabaseVersion
		}
		sp.MigrationsVersion = t.MigrationsVersion
		switch {
		case x.changing == 0:
			sp.Operation, sp.Reason = OpUnchanged, fmt.Sprintf("all %d instances already run %s", x.instances, t.Image)
		case spec.Database && spec.DatabaseCommands:
			sp.Operation = OpUpgrade
			sp.Reason = fmt.Sprintf("new image %s: its migration commands run (expand before the waves, migrate and contract after them)", t.Image)
			upgrades = append(upgrades, sp)
		case spec.Database && t.MigrationsVersion > spec.DatabaseVersion:
			sp.Operation = OpUpgrade
			sp.Reason = fmt.Sprintf("new image carries migrations up to version %d, database is at %d", t.MigrationsVersion, spec.DatabaseVersion)
			upgrades = append(upgrades, sp)
		default:
			sp.Operation = OpUpdate
			sp.Reason = fmt.Sprintf("%d of %d instances change; no migrations beyond the database's version", x.changing, x.instances)
		}
		sp.PerHost = spec.PerHost
		if x.instances == 1 && x.changing > 0 {
			sp.Outage = true
			sp.Reason += fmt.Sprintf("; single instance: replacing it is a full outage of %s", s)
		}
		p.Services = append(p.Services, sp)
	}

	waves, err := buildWaves(rel.Name, changed, levels, deps, st, in)
	if err != nil {
		return nil, err
	}
	serving := 0 // nodes that run any container: one is an all-in-one
	for _, n := range in.Nodes {
		if len(n.Containers) > 0 {
			serving++
		}
	}
	p.Warnings = warnings(p, changed, serving)

	var pre, expand, contract, verify []Step
	pre = append(pre, Step{Action: "check", Detail: fmt.Sprintf("node-updaters of the %d nodes to change are alive and report the planned images", len(changed))})
	pre = append(pre, Step{Action: "check", Detail: "no other upgrade holds the scope lock"})
	for _, sp := range upgrades {
		pre = append(pre, Step{Service: sp.Name, Action: "check", Detail: fmt.Sprintf("database is clean at version %d", sp.DatabaseVersion)})
		expand = append(expand, Step{Service: sp.Name, Action: "migrate", Detail: fmt.Sprintf("snapshot, then expand migrations %d → %d (old and new code both work)", sp.DatabaseVersion, sp.MigrationsVersion)})
		contract = append(contract,
			Step{Service: sp.Name, Action: "barrier", Detail: fmt.Sprintf("wait until every instance of %s runs %s", sp.Name, sp.Image)},
			Step{Service: sp.Name, Action: "migrate", Detail: fmt.Sprintf("contract migrations up to %d", sp.MigrationsVersion)})
	}
	for _, sp := range p.Services {
		if sp.Operation != OpUnchanged {
			verify = append(verify, Step{Service: sp.Name, Action: "verify", Detail: fmt.Sprintf("all %d instances run %s and are healthy", sp.Instances, sp.Image)})
		}
	}
	p.Phases = []Phase{
		{Name: PhasePreChecks, Steps: pre},
		{Name: PhaseExpand, Steps: expand},
		{Name: PhaseRollout, Waves: waves},
		{Name: PhaseContract, Steps: contract},
		{Name: PhaseVerify, Steps: verify},
	}
	return p, nil
}

// svcState is what Build learns about one released service.
type svcState struct {
	instances, changing int
	maxU                int
	level               int
}

// nodeChange holds, per service, the targets that change on one node.
type nodeChange struct {
	node    string
	drain   map[string]bool // services with a changing workload host
	targets map[string][]events.ContainerTarget
}

// visit is one node's turn in the rollout: the services it updates at
// once, in dependency-level order.
type visit struct {
	node     string
	drain    bool
	services []string
	targets  []events.ContainerTarget
}

// buildWaves turns the changes into waves.
//
// A node is visited as few times as the dependency order allows: a
// service may wait for a later visit of its node as long as no service
// that depends on it runs before that visit (its latest level is one below
// its earliest dependent's). So a compute node updates nova-libvirt,
// iscsid and nova-compute in one visit, drained once. Each node's services
// are then assigned the fewest visit levels that cover them (greedy on
// the latest level, then moved back to the highest level they need).
//
// Within a visit level, waves are built in turn. Every service starts with
// a canary wave holding one instance of it; then its waves double up to
// its max_unavailable. A per-host daemon (iscsid, cron) on a node the wave
// already updates for another service does not count against its own
// limit, so it never throttles the fleet. No wave drains more nodes than
// max_drained.
func buildWaves(release string, changed []nodeChange, levels map[string]int, deps map[string][]string, st map[string]*svcState, in Input) ([]Wave, error) {
	maxLevel := 0
	for _, l := range levels {
		maxLevel = max(maxLevel, l)
	}
	latest := map[string]int{}
	for s := range levels {
		latest[s] = maxLevel
	}
	for s, ds := range deps {
		for _, d := range ds {
			latest[d] = min(latest[d], levels[s]-1)
		}
	}
	drainTotal := 0
	for _, nc := range changed {
		if len(nc.drain) > 0 {
			drainTotal++
		}
	}
	capAmount := DefaultMaxDrained
	if a, err := inventory.ParseAmount(in.MaxDrained); err == nil {
		capAmount = a
	}
	maxDrained := capAmount.Of(drainTotal)

	byLevel := map[int][]visit{}
	for _, nc := range changed {
		svcs := slices.Sorted(maps.Keys(nc.targets))
		sort.SliceStable(svcs, func(i, j int) bool { return latest[svcs[i]] < latest[svcs[j]] })
		for len(svcs) > 0 {
			point := latest[svcs[0]]
			var here, rest []string
			for _, s := range svcs {
				if levels[s] <= point {
					here = append(here, s)
				} else {
					rest = append(rest, s)
				}
			}
			at := 0
			for _, s := range here {
				at = max(at, levels[s])
			}
			// Dependency-level order within the visit, so a host-local
			// peer (openvswitch before its agent) comes first.
			sort.SliceStable(here, func(i, j int) bool {
				if levels[here[i]] != levels[here[j]] {
					return levels[here[i]] < levels[here[j]]
				}
				return here[i] < here[j]
			})
			v := visit{node: nc.node}
			for _, s := range here {
				v.targets = append(v.targets, nc.targets[s]...)
				v.drain = v.drain || nc.drain[s]
			}
			v.services = slices.Sorted(slices.Values(here))
			byLevel[at] = append(byLevel[at], v)
			svcs = rest
		}
	}

	var waves []Wave
	done := map[string]int{} // instances of a service in earlier waves
	growth := map[string]int{}
	perHost := func(s string) bool { return in.Services[s].PerHost }
	for level := 0; level <= maxLevel; level++ {
		rest := byLevel[level]
		// The level's services: one with no instance placed yet still has
		// every visit pending, so it is due a canary.
		var levelServices []string
		seenSvc := map[string]bool{}
		for _, v := range rest {
			for _, s := range v.services {
				if !seenSvc[s] {
					seenSvc[s] = true
					levelServices = append(levelServices, s)
				}
			}
		}
		for len(rest) > 0 {
			canaryDue := false
			for _, s := range levelServices {
				if done[s] == 0 {
					canaryDue = true
					break
				}
			}
			w := Wave{Index: len(waves), Level: level, Canary: canaryDue}
			count := map[string]int{}
			drained := 0
			left := rest[:0] // filtered in place: writes never pass reads
			for _, v := range rest {
				fits := !v.drain || drained < maxDrained
				if canaryDue && fits {
					fits = false
					for _, s := range v.services {
						if done[s] == 0 {
							fits = true
						}
					}
				}
				carrier := false // a service that is not a per-host daemon
				for _, s := range v.services {
					carrier = carrier || !perHost(s)
				}
				for _, s := range v.services {
					if !fits {
						break
					}
					limit := min(max(1, growth[s]), st[s].maxU)
					switch {
					case done[s] == 0:
						limit = 1 // the canary: one instance, whatever rides along
					case perHost(s) && carrier:
						continue // rides along with the node's other services
					}
					if count[s] >= limit {
						fits = false
					}
				}
				if !fits {
					left = append(left, v)
					continue
				}
				for _, s := range v.services {
					count[s]++
				}
				if v.drain {
					drained++
				}
				w.Nodes = append(w.Nodes, WaveNode{Node: v.node, Drain: v.drain, Targets: v.targets})
			}
			if len(w.Nodes) == 0 {
				return nil, fmt.Errorf("plan release %q: no node fits wave %d; this is a planner bug, please report it with the inventory", release, w.Index)
			}
			for s, c := range count {
				w.Services = append(w.Services, s)
				if done[s] == 0 && canaryDue {
					w.CanaryOf = append(w.CanaryOf, s)
				}
				done[s] += c
				// Double while health holds, never beyond max_unavailable
				// (which also keeps the number from overflowing).
				growth[s] = min(max(1, growth[s])*2, st[s].maxU)
			}
			sort.Strings(w.Services)
			sort.Strings(w.CanaryOf)
			waves = append(waves, w)
			rest = left
		}
	}
	return waves, nil
}

// warnings lists what the plan cannot make zero-downtime. An all-in-one is
// a fleet of one serving node (serving counts the input's nodes that run
// anything), not a release that touches one node of several: that one gets
// a warning per single-instance service instead.
func warnings(p *Plan, changed []nodeChange, serving int) []string {
	if len(changed) == 1 && serving == 1 {
		return []string{fmt.Sprintf("all-in-one: every service runs a single instance on %s, so each replacement is a full outage of that service; schedule a maintenance window", changed[0].node)}
	}
	var out []string
	for _, s := range p.Services {
		if s.Outage {
			out = append(out, fmt.Sprintf("%s has a single instance: replacing it is a full outage of %s", s.Name, s.Name))
		}
	}
	return out
}

// envDiff returns the release's env keys whose value the container lacks.
func envDiff(have, want map[string]string) []string {
	var out []string
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// levelsOf assigns each service its depth in the dependency DAG (0 for no
// dependencies); a cycle is an error naming it.
func levelsOf(deps map[string][]string) (map[string]int, error) {
	level := map[string]int{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var stack []string
	var visit func(s string) error
	visit = func(s string) error {
		switch state[s] {
		case 2:
			return nil
		case 1:
			i := slices.Index(stack, s)
			return fmt.Errorf("dependency cycle: %s", strings.Join(append(slices.Clone(stack[i:]), s), " → "))
		}
		state[s] = 1
		stack = append(stack, s)
		l := 0
		for _, d := range deps[s] {
			if err := visit(d); err != nil {
				return err
			}
			l = max(l, level[d]+1)
		}
		stack = stack[:len(stack)-1]
		state[s], level[s] = 2, l
		return nil
	}
	for _, s := range slices.Sorted(maps.Keys(deps)) {
		if err := visit(s); err != nil {
			return nil, err
		}
	}
	return level, nil
}
