package fleetinfo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
)

// Adopt reports, changing nothing, how a node-updater started with the
// inventory invFile as node (default: this host's name) would see the local
// Docker engine, as text or json.
func Adopt(ctx context.Context, w io.Writer, invFile, node, format string) error {
	inv, err := inventory.Load(invFile)
	if err != nil {
		return err
	}
	name := node
	if name == "" {
		if name, err = os.Hostname(); err != nil {
			return fmt.Errorf("find this host's name: %w (give --node)", err)
		}
	}
	if _, ok := inv.Nodes[name]; !ok {
		return exit.Usagef("%s has no node %q; give --node with one of its %d nodes", invFile, name, len(inv.Nodes))
	}
	engine, err := EngineContainers(ctx)
	if err != nil {
		return err
	}
	rep := AdoptReport(inv, name, engine)
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.Text(w, invFile)
}

// EngineContainer is a container as the engine lists it.
type EngineContainer struct {
	Name   string
	Image  string
	State  string
	Labels map[string]string
}

func EngineContainers(ctx context.Context) ([]EngineContainer, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("create docker client: %w", err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers of the docker engine: %w", err)
	}
	var out []EngineContainer
	for _, c := range list.Items {
		for _, n := range c.Names {
			out = append(out, EngineContainer{Name: strings.TrimPrefix(n, "/"), Image: c.Image, State: string(c.State), Labels: c.Labels})
		}
	}
	return out, nil
}

// Adoption statuses.
const (
	adoptManaged = "managed" // labelled for the node: managed already
	adoptAdopt   = "adopt"   // no cutover label: adopted by name
	adoptMissing = "missing" // the inventory names it, the engine lacks it
	adoptOther   = "refused" // labelled for another node: left alone
	adoptUnknown = "unknown" // on the engine, not in the inventory: left alone
)

// adoptEntry is one container of the dry run.
type adoptEntry struct {
	Container    string `json:"container"`
	Status       string `json:"status"`
	Service      string `json:"service,omitempty"`
	WorkloadHost bool   `json:"workload_host,omitempty"`
	Image        string `json:"image,omitempty"`
	State        string `json:"state,omitempty"`
	Reason       string `json:"reason"`
}

// AdoptResult is the dry run for one node.
type AdoptResult struct {
	Node       string         `json:"node"`
	Containers []adoptEntry   `json:"containers"`
	Counts     map[string]int `json:"counts"`
}

// AdoptReport matches what the inventory places on node against what the
// engine runs, as the node-updater's adoption does.
func AdoptReport(inv *inventory.Inventory, node string, engine []EngineContainer) AdoptResult {
	res := AdoptResult{Node: node, Counts: map[string]int{}}
	byName := map[string]EngineContainer{}
	for _, c := range engine {
		byName[c.Name] = c
	}
	named := map[string]bool{}
	for _, p := range inv.ContainersOf(node) {
		named[p.Name] = true
		e := adoptEntry{Container: p.Name, Service: p.Service, WorkloadHost: p.WorkloadHost}
		c, ok := byName[p.Name]
		owner, labelled := c.Labels[events.LabelNode]
		switch {
		case !ok:
			e.Status, e.Reason = adoptMissing, "the inventory places it here, the engine has no such container; check the name, or the inventory's services for this node"
		case labelled && owner == node:
			e.Status, e.Reason = adoptManaged, "labelled "+events.LabelNode+"="+node
		case labelled:
			e.Status, e.Reason = adoptOther, fmt.Sprintf("labelled %s=%s: another node-updater owns it; left alone", events.LabelNode, owner)
		default:
			e.Status, e.Reason = adoptAdopt, "no cutover label: adopted by name; its first replacement adds the labels"
		}
		e.Image, e.State = c.Image, c.State
		if ok && labelled && c.Labels[events.LabelService] != "" && c.Labels[events.LabelService] != p.Service {
			e.Reason += fmt.Sprintf("; its service label %q differs from the inventory's %q, the label wins", c.Labels[events.LabelService], p.Service)
		}
		res.Containers = append(res.Containers, e)
	}
	for _, name := range sortedEngineNames(byName) {
		c := byName[name]
		if named[name] {
			continue
		}
		if _, ok := isStandIn(name, named); ok {
			continue // an unfinished replacement's stand-in: recovery settles it
		}
		owner, labelled := c.Labels[events.LabelNode]
		e := adoptEntry{Container: name, Status: adoptUnknown, Image: c.Image, State: c.State, Service: c.Labels[events.LabelService]}
		switch {
		case labelled && owner == node:
			e.Status, e.Reason = adoptManaged, "labelled "+events.LabelNode+"="+node+" (not in the inventory)"
		case labelled:
			continue // another node's container on a shared engine
		default:
			e.Reason = "not in the inventory: left alone"
		}
		res.Containers = append(res.Containers, e)
	}
	for _, e := range res.Containers {
		res.Counts[e.Status]++
	}
	return res
}

func isStandIn(name string, named map[string]bool) (string, bool) {
	for _, suf := range []string{"-cutover-old", "-cutover-new"} {
		if base, ok := strings.CutSuffix(name, suf); ok && named[base] {
			return base, true
		}
	}
	return "", false
}

func sortedEngineNames(m map[string]EngineContainer) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (r AdoptResult) Text(w io.Writer, invFile string) error {
	fmt.Fprintf(w, "node %s: %d managed, %d to adopt, %d missing, %d unknown, %d refused\n",
		r.Node, r.Counts[adoptManaged], r.Counts[adoptAdopt], r.Counts[adoptMissing], r.Counts[adoptUnknown], r.Counts[adoptOther])
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, e := range r.Containers {
		svc := e.Service
		if svc == "" {
			svc = "-"
		}
		if e.WorkloadHost {
			svc += " (workload host)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Status, e.Container, svc, e.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Counts[adoptAdopt] > 0 || r.Counts[adoptManaged] > 0 {
		fmt.Fprintf(w, "to manage them: node-updater --node %s --inventory %s\n", r.Node, invFile)
	}
	return nil
}
