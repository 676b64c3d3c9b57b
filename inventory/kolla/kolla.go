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
// operator's globals.yml, only enabled services are imported.
//
// Each container's image on each host is kolla-ansible's
// <container>_image_full, evaluated with Ansible's precedence over the
// role defaults the table describes, the inventory's group and host vars,
// kolla-ansible's group_vars/all and globals.yml (vars.go evaluates the
// small part of Jinja these variables use). A service's image is the one
// most of its hosts run; the others are kept per node.
//
// Hosts in the same groups share a role named after every group that
// lists them directly (control, compute, control+monitoring, ...).
package kolla

import (
	"fmt"
	"maps"
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
	// GlobalsLines holds the line of each setting of Globals, for errors
	// (see ReadGlobals).
	GlobalsLines map[string]int
	// Registry, when set, replaces docker_image_url
	// (<docker_registry>/<docker_namespace>/<docker_image_name_prefix>).
	Registry string
	// Tag, when set, replaces openstack_tag, the tag of every image that
	// globals.yml or the inventory does not pin.
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
	// Pinned are host/container pairs whose image differs from the one
	// the service's other hosts run (host or group vars pinning a tag).
	Pinned []string
	// Shadowed are [group:vars] settings that kolla-ansible's
	// group_vars/all overrides (openstack_tag under [all:vars]): Ansible
	// ranks inventory group vars below a playbook's group_vars, so
	// kolla-ansible, and this import, ignore them.
	Shadowed []string
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
	img, err := newImages(f, t, opts, src)
	if err != nil {
		return nil, rep, err
	}
	nodeImages := map[string]map[string]string{}
	for _, n := range sortedNames(f.Groups) {
		g := f.Groups[n]
		for _, k := range sortedNames(g.Vars) {
			if _, ok := img.allVars[k]; ok && isImageSetting(k) {
				rep.Shadowed = append(rep.Shadowed, fmt.Sprintf("%s (%s:%d, [%s:vars])", k, f.name, g.varLine[k], n))
			}
		}
	}

	inv := &inventory.Inventory{Nodes: map[string]inventory.Node{}, Roles: map[string]inventory.Role{}, Services: map[string]inventory.Service{}}
	hostServices := map[string][]string{}
	known := map[string]bool{}
	for _, n := range t.NotServices {
		known[n] = true
	}
	for _, ts := range t.Services {
		known[ts.Group] = true
		// A project's own group ([nova:children], [neutron:children] in
		// kolla-ansible's multinode) feeds its services' groups; it runs
		// nothing of its own, and is no unknown service even when the
		// groups that list it were edited out.
		if ts.Project != "" {
			known[ts.Project] = true
		}
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
			common, differ, err := img.on(hosts, c)
			if err != nil {
				return nil, rep, fmt.Errorf("service %s: %w", ts.Name, err)
			}
			svc.Containers = append(svc.Containers, inventory.Container{Name: c.Name, Image: common, WorkloadHost: c.WorkloadHost})
			for _, h := range slices.Sorted(maps.Keys(differ)) {
				im := differ[h]
				rep.Pinned = append(rep.Pinned, h+"/"+c.Name)
				if nodeImages[h] == nil {
					nodeImages[h] = map[string]string{}
				}
				nodeImages[h][c.Name] = im
			}
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
		node := inventory.Node{Roles: []string{role}, Images: nodeImages[h]}
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

// isImageSetting says whether k is a setting of kolla-ansible's
// group_vars/all that images are made of; a [group:vars] setting of one
// of them is reported as shadowed (enable_* flags are read from
// globals.yml only).
func isImageSetting(k string) bool {
	switch k {
	case "docker_registry", "docker_namespace", "docker_image_name_prefix", "docker_image_url",
		"kolla_base_distro", "kolla_base_distro_version",
		"openstack_release", "openstack_tag", "openstack_tag_suffix":
		return true
	}
	return false
}

// images resolves each container's image on each host, as kolla-ansible
// does: <var>_image_full, evaluated with Ansible's precedence, lowest
// first: kolla-ansible's role defaults, the inventory's group vars,
// kolla-ansible's group_vars/all, the inventory's host vars, globals.yml
// (kolla-ansible passes it as extra vars), then --registry and --tag.
type images struct {
	f                     *File
	roleDefaults, allVars layer
	globals, flags        layer
	hosts                 map[string]*resolver // by host
	shared                map[string]*resolver // by groups and host vars
}

func newImages(f *File, t *Table, opts Options, src string) (*images, error) {
	rd, err := t.roleDefaults()
	if err != nil {
		return nil, err
	}
	im := &images{f: f, roleDefaults: rd, allVars: t.groupVarsAll(), globals: layer{}, flags: layer{}, hosts: map[string]*resolver{}, shared: map[string]*resolver{}}
	for k, v := range opts.Globals {
		where := src
		if n := opts.GlobalsLines[k]; n > 0 {
			where = fmt.Sprintf("%s:%d", src, n)
		}
		im.globals[k] = definition{raw: v, where: where}
	}
	if opts.Registry != "" {
		im.flags["docker_image_url"] = definition{raw: strings.TrimSuffix(opts.Registry, "/") + "/", where: "--registry"}
	}
	if opts.Tag != "" {
		im.flags["openstack_tag"] = definition{raw: opts.Tag, where: "--tag"}
	}
	return im, nil
}

// resolver returns host's resolver. Hosts in the same groups with the
// same host variables (every host of a range such as compute[001:400])
// share one, so a large fleet evaluates each image once per kind of host.
func (im *images) resolver(host string) *resolver {
	if r := im.hosts[host]; r != nil {
		return r
	}
	groups := im.f.varGroups(host)
	var key strings.Builder
	for _, g := range groups {
		key.WriteString(g)
		key.WriteByte(0)
	}
	key.WriteByte(0)
	hv := im.f.HostVars[host]
	for _, k := range slices.Sorted(maps.Keys(hv)) {
		key.WriteString(k)
		key.WriteByte('=')
		key.WriteString(hv[k])
		fmt.Fprintf(&key, "@%d", im.f.hostVarLine[host][k]) // errors name the line
		key.WriteByte(0)
	}
	r := im.shared[key.String()]
	if r == nil {
		groupVars, hostVars := im.f.layersOf(host, groups)
		r = newResolver(im.roleDefaults, groupVars, im.allVars, hostVars, im.globals, im.flags)
		im.shared[key.String()] = r
	}
	im.hosts[host] = r
	return r
}

// on returns the image most of hosts run for container c (on a tie, the
// first host's), and the hosts that run another one: those go in the
// node's images, which the planner reads as what the node runs now.
func (im *images) on(hosts []string, c TableContainer) (common string, differ map[string]string, err error) {
	_, _, full := c.vars()
	byHost := make(map[string]string, len(hosts))
	count := map[string]int{}
	for _, h := range hosts {
		r := im.resolver(h)
		v, err := r.value(full, nil, "")
		if err != nil {
			return "", nil, fmt.Errorf("image of container %s on host %s: %w", c.Name, h, err)
		}
		if v == "" || strings.HasSuffix(v, ":") || strings.HasPrefix(v, ":") || strings.ContainsAny(v, " \t\n") {
			d, _ := r.lookup(full)
			return "", nil, fmt.Errorf("image of container %s on host %s: %s is %q (%s), not an image reference; set a non-empty image and tag", c.Name, h, full, v, d.where)
		}
		byHost[h] = v
		count[v]++
	}
	for _, h := range hosts { // ties go to the first host's image
		if v := byHost[h]; common == "" || count[v] > count[common] {
			common = v
		}
	}
	for h, v := range byHost {
		if v != common {
			if differ == nil {
				differ = map[string]string{}
			}
			differ[h] = v
		}
	}
	return common, differ, nil
}
