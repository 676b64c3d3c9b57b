// Package kolla converts a kolla-ansible INI inventory (the multinode or
// all-in-one file operators already have) into a cutover inventory.
//
// Every service group (nova-api, neutron-l3-agent, ...) is resolved through
// its [group:children] chain to hosts; hosts that run the same set of
// services share a role named after their host groups (control, compute,
// control+network, ...). A service gets one container named like kolla's
// (nova-api → nova_api) with kolla's image name, a dependency order from
// OpenStack's (database and queue → identity → APIs → agents), and
// nova-libvirt is marked as a workload host.
package kolla

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cutover-dev/cutover/services/planner/inventory"
)

// Options tune the images the converted inventory names.
type Options struct {
	// Registry is the image registry and namespace (default quay.io/openstack.kolla).
	Registry string
	// Tag is the image tag the fleet runs now (default 2024.1-ubuntu-jammy).
	Tag string
}

func (o *Options) setDefaults() {
	if o.Registry == "" {
		o.Registry = "quay.io/openstack.kolla"
	}
	if o.Tag == "" {
		o.Tag = "2024.1-ubuntu-jammy"
	}
}

// Report says what the conversion left out and why.
type Report struct {
	// EmptyGroups are service groups that resolve to no host (not deployed).
	EmptyGroups []string
	// IdleHosts are hosts that run no service (e.g. the deployment host).
	IdleHosts []string
}

// notServices are groups of the kolla inventory that group hosts for
// Ansible but do not name a container-running service.
var notServices = map[string]bool{"all": true, "ungrouped": true, "baremetal": true, "tls-backend": true, "kolla-logs": true}

// workloadHosts are kolla services whose containers host instances.
var workloadHosts = map[string]bool{"nova-libvirt": true}

// File is a parsed INI inventory.
type File struct {
	// Groups maps a group name to its hosts and children, in file order.
	Groups map[string]*Group
	// HostVars holds the variables given on a host's lines.
	HostVars map[string]map[string]string
	order    []string
}

// Group is one [group] or [group:children] section.
type Group struct {
	Name     string
	Hosts    []string
	Children []string
	Vars     map[string]string
	line     int
}

// Parse reads kolla-ansible's INI inventory: [group] sections list hosts
// (with ranges such as control[01:03] and key=value variables),
// [group:children] sections list groups, [group:vars] sections set
// variables; # and ; start comments.
func Parse(name string, r io.Reader) (*File, error) {
	f := &File{Groups: map[string]*Group{}, HostVars: map[string]map[string]string{}}
	group := func(n string, line int) *Group {
		g := f.Groups[n]
		if g == nil {
			g = &Group{Name: n, Vars: map[string]string{}, line: line}
			f.Groups[n] = g
			f.order = append(f.order, n)
		}
		return g
	}
	sc := bufio.NewScanner(r)
	var cur *Group
	kind := ""
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := stripComment(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: section header %q has no closing ]", name, lineNo, line)
			}
			head := strings.TrimSpace(line[1 : len(line)-1])
			gname, k, _ := strings.Cut(head, ":")
			switch k {
			case "", "children", "vars":
			default:
				return nil, fmt.Errorf("%s:%d: section [%s]: %q is not children or vars", name, lineNo, head, k)
			}
			if gname == "" {
				return nil, fmt.Errorf("%s:%d: section [%s] has no group name", name, lineNo, head)
			}
			cur, kind = group(gname, lineNo), k
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %q comes before any [group] section", name, lineNo, line)
		}
		fields, err := splitFields(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lineNo, err)
		}
		switch kind {
		case "children":
			if len(fields) != 1 {
				return nil, fmt.Errorf("%s:%d: [%s:children] takes one group name per line, got %q", name, lineNo, cur.Name, line)
			}
			if !slices.Contains(cur.Children, fields[0]) {
				cur.Children = append(cur.Children, fields[0])
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%s:%d: [%s:vars] line %q is not key=value", name, lineNo, cur.Name, line)
			}
			cur.Vars[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
		default:
			hosts, err := expand(fields[0])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: host %q: %w", name, lineNo, fields[0], err)
			}
			vars := map[string]string{}
			for _, kv := range fields[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("%s:%d: host variable %q is not key=value", name, lineNo, kv)
				}
				vars[k] = unquote(v)
			}
			for _, h := range hosts {
				if !slices.Contains(cur.Hosts, h) {
					cur.Hosts = append(cur.Hosts, h)
				}
				if f.HostVars[h] == nil {
					f.HostVars[h] = map[string]string{}
				}
				for k, v := range vars {
					f.HostVars[h][k] = v
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	for _, n := range f.order {
		for _, c := range f.Groups[n].Children {
			if f.Groups[c] == nil {
				return nil, fmt.Errorf("%s:%d: [%s:children] names group %q, which is not defined; add a [%s] section or remove the line", name, f.Groups[n].line, n, c, c)
			}
		}
	}
	return f, nil
}

// Hosts resolves a group through its children to hosts, sorted. A cycle of
// children is an error that names it.
func (f *File) Hosts(group string) ([]string, error) {
	seen := map[string]bool{}
	var visit func(g string, path []string) error
	visit = func(g string, path []string) error {
		if i := slices.Index(path, g); i >= 0 {
			return fmt.Errorf("group children form a cycle: %s", strings.Join(append(path[i:], g), " → "))
		}
		grp := f.Groups[g]
		if grp == nil {
			return fmt.Errorf("group %q is not defined", g)
		}
		for _, h := range grp.Hosts {
			seen[h] = true
		}
		for _, c := range grp.Children {
			if err := visit(c, append(path, g)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(group, nil); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	return out, nil
}

// Convert builds a cutover inventory from a parsed kolla inventory.
func Convert(f *File, opts Options) (*inventory.Inventory, Report, error) {
	opts.setDefaults()
	var rep Report
	isChild := map[string]bool{}
	for _, g := range f.Groups {
		for _, c := range g.Children {
			isChild[c] = true
		}
	}
	inv := &inventory.Inventory{Nodes: map[string]inventory.Node{}, Roles: map[string]inventory.Role{}, Services: map[string]inventory.Service{}}
	hostServices := map[string][]string{}
	for _, n := range sortedNames(f.Groups) {
		g := f.Groups[n]
		if len(g.Hosts) > 0 || isChild[n] || notServices[n] {
			continue // a host group, a project group, or Ansible plumbing
		}
		hosts, err := f.Hosts(n)
		if err != nil {
			return nil, rep, fmt.Errorf("resolve group %s: %w", n, err)
		}
		if len(hosts) == 0 {
			rep.EmptyGroups = append(rep.EmptyGroups, n)
			continue
		}
		inv.Services[n] = inventory.Service{Containers: []inventory.Container{{
			Name:         strings.ReplaceAll(n, "-", "_"),
			Image:        fmt.Sprintf("%s/%s:%s", opts.Registry, n, opts.Tag),
			WorkloadHost: workloadHosts[n],
		}}}
		for _, h := range hosts {
			hostServices[h] = append(hostServices[h], n)
		}
	}
	for name, svc := range inv.Services {
		svc.DependsOn = dependencies(name, inv.Services)
		inv.Services[name] = svc
	}
	// Host groups a host is listed in directly name its role.
	hostGroups := map[string][]string{}
	for _, n := range sortedNames(f.Groups) {
		for _, h := range f.Groups[n].Hosts {
			hostGroups[h] = append(hostGroups[h], n)
		}
	}
	roleOf := map[string]string{} // service set -> role name
	for _, h := range sortedNames(f.HostVars) {
		svcs := hostServices[h]
		if len(svcs) == 0 {
			rep.IdleHosts = append(rep.IdleHosts, h)
			continue
		}
		set := strings.Join(svcs, ",")
		role, ok := roleOf[set]
		if !ok {
			base := strings.Join(hostGroups[h], "+")
			role = base
			for i := 2; inv.Roles[role].Services != nil; i++ {
				role = base + "-" + strconv.Itoa(i)
			}
			roleOf[set] = role
			inv.Roles[role] = inventory.Role{Services: svcs}
		}
		node := inventory.Node{Roles: []string{role}}
		if vars := f.HostVars[h]; len(vars) > 0 {
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

// infra are the services every OpenStack API depends on, in kolla's deploy order.
var infra = map[string][]string{
	"keystone":             {"mariadb", "memcached"},
	"openvswitch-vswitchd": {"openvswitch-db-server"},
	"nova-compute":         {"nova-libvirt", "nova-ssh", "nova-conductor", "placement-api"},
	"neutron-server":       {"keystone", "rabbitmq"},
	"haproxy":              {"keepalived"},
	"grafana":              {"prometheus-server"},
}

// dependencies gives a kolla service the services it needs first, among
// those present: explicit infra edges; then every API or server of a project
// needs keystone and the queue; every other service of a project needs its
// API or server; agents on openvswitch need the vswitch.
func dependencies(name string, present map[string]inventory.Service) []string {
	var out []string
	add := func(d string) {
		if _, ok := present[d]; ok && d != name && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, d := range infra[name] {
		add(d)
	}
	project, _, _ := strings.Cut(name, "-")
	isAPI := strings.HasSuffix(name, "-api") || strings.HasSuffix(name, "-server") && project != "openvswitch"
	switch {
	case isAPI && project != "keystone":
		add("keystone")
		add("rabbitmq")
		add("mariadb")
	case project != name:
		add(project + "-api")
		add(project + "-server")
	}
	if strings.HasSuffix(name, "-openvswitch-agent") {
		add("openvswitch-vswitchd")
	}
	if project == "horizon" {
		add("keystone")
	}
	sort.Strings(out)
	return out
}

func stripComment(line string) string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
		return ""
	}
	// An inline comment starts at a # preceded by whitespace, outside quotes.
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && i > 0 && (line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimSpace(line[:i])
		}
	}
	return line
}

func splitFields(line string) ([]string, error) {
	var out []string
	var b bytes.Buffer
	quote := byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			b.WriteByte(c)
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
			b.WriteByte(c)
		case c == ' ' || c == '\t':
			if b.Len() > 0 {
				out = append(out, b.String())
				b.Reset()
			}
		default:
			b.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// expand expands one host pattern: control[01:03] gives control01..control03
// (width kept), storage[a:c] gives storagea..storagec, [1:9:2] steps by 2.
func expand(pattern string) ([]string, error) {
	open := strings.IndexByte(pattern, '[')
	if open < 0 {
		return []string{pattern}, nil
	}
	end := strings.IndexByte(pattern[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("range has no closing ]")
	}
	end += open
	prefix, spec, suffix := pattern[:open], pattern[open+1:end], pattern[end+1:]
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("range [%s] is not [start:end] or [start:end:step]", spec)
	}
	step := 1
	if len(parts) == 3 {
		s, err := strconv.Atoi(parts[2])
		if err != nil || s < 1 {
			return nil, fmt.Errorf("range step %q is not a positive number", parts[2])
		}
		step = s
	}
	var items []string
	if a, errA := strconv.Atoi(parts[0]); errA == nil {
		b, err := strconv.Atoi(parts[1])
		if err != nil || b < a {
			return nil, fmt.Errorf("range [%s] does not go from a number up to a number", spec)
		}
		width := len(parts[0])
		for i := a; i <= b; i += step {
			items = append(items, fmt.Sprintf("%0*d", width, i))
		}
	} else {
		if len(parts[0]) != 1 || len(parts[1]) != 1 || parts[0][0] > parts[1][0] {
			return nil, fmt.Errorf("range [%s] is neither numeric nor single letters in order", spec)
		}
		for c := parts[0][0]; c <= parts[1][0]; c += byte(step) {
			items = append(items, string(c))
			if int(c)+step > 255 {
				break
			}
		}
	}
	var out []string
	for _, it := range items {
		rest, err := expand(suffix)
		if err != nil {
			return nil, err
		}
		for _, r := range rest {
			out = append(out, prefix+it+r)
		}
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
