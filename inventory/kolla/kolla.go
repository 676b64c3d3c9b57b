// Package kolla converts a kolla-ansible INI inventory (the multinode or
// all-in-one file operators already have) into a cutover inventory.
//
// Groups resolve as Ansible resolves them: [group:children] to any depth
// (service groups nest: prometheus-mysqld-exporter → mariadb → control),
// hosts listed directly in any group, [group:vars], host:port, ranges and
// hosts before the first section (ungrouped). Which services exist, the
// group each runs on (its own group, or its role's default such as
// nova-compute → compute, haproxy → loadbalancer), its containers with
// kolla's names and images, and its dependencies come from the service
// table in services.yaml, written for one kolla-ansible release. With the
// operator's globals.yml, only enabled services are imported and images
// follow docker_registry, docker_namespace, kolla_base_distro and
// openstack_tag / openstack_release.
//
// Hosts in the same groups share a role named after every group that
// lists them directly (control, compute, control+monitoring, ...).
package kolla

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/inventory"
)

// Options tune the conversion.
type Options struct {
	// Globals are the operator's globals.yml settings (see LoadGlobals).
	// When set, only the services they enable are imported; when nil every
	// service the inventory places is imported.
	Globals map[string]string
	// GlobalsFile names the globals file in errors.
	GlobalsFile string
	// Registry, when set, replaces <docker_registry>/<docker_namespace>.
	Registry string
	// Tag, when set, replaces the tag every image is given.
	Tag string
	// Table is the service table (default: the built-in one).
	Table *Table
}

// Report says what the conversion left out and why.
type Report struct {
	// Release is the kolla-ansible release of the service table used.
	Release string
	// EmptyGroups are services whose group resolves to no host.
	EmptyGroups []string
	// Disabled are services placed by the inventory but disabled by globals.yml.
	Disabled []string
	// NoGroup are services globals.yml enables whose group the inventory lacks.
	NoGroup []string
	// UnknownGroups are groups that look like services (no hosts of their
	// own, no parent) but that the service table does not know.
	UnknownGroups []string
	// IdleHosts are hosts that run no service (e.g. the deployment host).
	IdleHosts []string
}

// Convert builds a cutover inventory from a parsed kolla inventory.
func Convert(f *File, opts Options) (*inventory.Inventory, Report, error) {
	t := opts.Table
	if t == nil {
		var err error
		if t, err = builtinTable(); err != nil {
			return nil, Report{}, err
		}
	}
	rep := Report{Release: t.Release}
	src := opts.GlobalsFile
	if src == "" {
		src = "globals"
	}
	set := &settings{user: opts.Globals, defaults: t.Globals, source: src}
	base, tag, err := set.images(t)
	if err != nil {
		return nil, rep, err
	}
	if opts.Registry != "" {
		base = strings.TrimSuffix(opts.Registry, "/") + "/"
	}
	if opts.Tag != "" {
		tag = opts.Tag
	}

	inv := &inventory.Inventory{Nodes: map[string]inventory.Node{}, Roles: map[string]inventory.Role{}, Services: map[string]inventory.Service{}}
	hostServices := map[string][]string{}
	known := map[string]bool{}
	for _, n := range t.NotServices {
		known[n] = true
	}
	for _, ts := range t.Services {
		known[ts.Group] = true
		if opts.Globals != nil {
			on, err := set.enabled(ts.Enabled, 0)
			if err != nil {
				return nil, rep, fmt.Errorf("service %s (enabled: %s): %w", ts.Name, ts.Enabled, err)
			}
			if !on {
				if g := f.Groups[ts.Group]; g != nil {
					if hosts, _ := f.Hosts(ts.Group); len(hosts) > 0 {
						rep.Disabled = append(rep.Disabled, ts.Name)
					}
				}
				continue
			}
		}
		if f.Groups[ts.Group] == nil {
			if opts.Globals != nil {
				rep.NoGroup = append(rep.NoGroup, ts.Name+" (group "+ts.Group+")")
			}
			continue
		}
		hosts, err := f.Hosts(ts.Group)
		if err != nil {
			return nil, rep, fmt.Errorf("resolve group %s of service %s: %w", ts.Group, ts.Name, err)
		}
		if len(hosts) == 0 {
			rep.EmptyGroups = append(rep.EmptyGroups, ts.Name)
			continue
		}
		svc := inventory.Service{PerHost: ts.PerHost}
		for _, c := range ts.Containers {
			svc.Containers = append(svc.Containers, inventory.Container{Name: c.Name, Image: base + c.Image + ":" + tag, WorkloadHost: c.WorkloadHost})
		}
		svc.DependsOn = slices.Clone(ts.DependsOn)
		inv.Services[ts.Name] = svc
		for _, h := range hosts {
			hostServices[h] = append(hostServices[h], ts.Name)
		}
	}
	for name, svc := range inv.Services {
		svc.DependsOn = slices.DeleteFunc(svc.DependsOn, func(d string) bool { _, ok := inv.Services[d]; return !ok })
		slices.Sort(svc.DependsOn)
		if len(svc.DependsOn) == 0 {
			svc.DependsOn = nil
		}
		inv.Services[name] = svc
	}
	isChild := map[string]bool{}
	for _, g := range f.Groups {
		for _, c := range g.Children {
			isChild[c] = true
		}
	}
	for _, n := range sortedNames(f.Groups) {
		if !known[n] && !isChild[n] && len(f.Groups[n].Hosts) == 0 {
			rep.UnknownGroups = append(rep.UnknownGroups, n)
		}
	}

	// A host's role is named after every group that lists it directly;
	// hosts in the same groups run the same services.
	direct := map[string][]string{}
	for _, n := range f.order {
		if n == "all" {
			continue
		}
		for _, h := range f.Groups[n].Hosts {
			direct[h] = append(direct[h], n)
		}
	}
	for _, h := range sortedNames(f.HostVars) {
		svcs := hostServices[h]
		if len(svcs) == 0 {
			rep.IdleHosts = append(rep.IdleHosts, h)
			continue
		}
		slices.Sort(svcs)
		role := strings.Join(direct[h], "+")
		if r, ok := inv.Roles[role]; ok && !slices.Equal(r.Services, svcs) {
			return nil, rep, fmt.Errorf("hosts in groups %s run different services; this is an importer bug, please report it with the inventory", role)
		}
		inv.Roles[role] = inventory.Role{Services: svcs}
		node := inventory.Node{Roles: []string{role}}
		if vars := f.Vars(h); len(vars) > 0 {
			node.Vars = vars
			node.Address = vars["ansible_host"]
		}
		inv.Nodes[h] = node
	}
	if err := inv.Validate(); err != nil {
		return nil, rep, fmt.Errorf("convert kolla inventory: %w", err)
	}
	return inv, rep, nil
}
