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
)

// File is a parsed INI inventory.
type File struct {
	// Groups maps a group name to its hosts and children, in file order.
	Groups map[string]*Group
	// HostVars holds the variables given on a host's lines.
	HostVars map[string]map[string]string
	name     string
	// hostVarLine holds the line that set each host variable, for errors.
	hostVarLine map[string]map[string]int
	order       []string
	// memberCache holds resolved groups; Parse fills the file, then it
	// is read only, so the cache never goes stale.
	memberCache map[string]map[string]bool
	depthCache  map[string]int
}

// Group is one [group], [group:children] or [group:vars] section (all
// sections of one name merge, as in Ansible).
type Group struct {
	Name     string
	Hosts    []string
	Children []string
	Vars     map[string]string
	line     int
	varLine  map[string]int // the line that set each variable
}

// Parse reads an Ansible INI inventory as kolla-ansible uses it: [group]
// sections list hosts (ranges such as compute[01:40] or storage[a:c],
// host:port, key=value variables), [group:children] sections list groups,
// [group:vars] sections set variables; hosts before the first section are
// ungrouped; # and ; start comments. Every host is in the implicit group
// all, and a host in no other group is also in ungrouped.
func Parse(name string, r io.Reader) (*File, error) {
	f := &File{Groups: map[string]*Group{}, HostVars: map[string]map[string]string{}, name: name, hostVarLine: map[string]map[string]int{}}
	group := func(n string, line int) *Group {
		g := f.Groups[n]
		if g == nil {
			g = &Group{Name: n, Vars: map[string]string{}, line: line, varLine: map[string]int{}}
			f.Groups[n] = g
			f.order = append(f.order, n)
		}
		return g
	}
	inSection := map[string]map[string]bool{} // group -> hosts listed directly
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
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
			// Ansible puts hosts listed before any section in ungrouped.
			cur, kind = group("ungrouped", lineNo), ""
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
			if fields[0] == cur.Name {
				return nil, fmt.Errorf("%s:%d: [%s:children] lists the group itself; remove the line", name, lineNo, cur.Name)
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
			cur.varLine[strings.TrimSpace(k)] = lineNo
		default:
			pattern, port, err := splitPort(fields[0])
			if err != nil {
				return nil, fmt.Errorf("%s:%d: host %q: %w", name, lineNo, fields[0], err)
			}
			hosts, err := expand(pattern)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: host %q: %w", name, lineNo, fields[0], err)
			}
			vars := map[string]string{}
			if port != "" {
				vars["ansible_port"] = port
			}
			for _, kv := range fields[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("%s:%d: host variable %q is not key=value", name, lineNo, kv)
				}
				vars[k] = unquote(v)
			}
			for _, h := range hosts {
				if !inSection[cur.Name][h] {
					if inSection[cur.Name] == nil {
						inSection[cur.Name] = map[string]bool{}
					}
					inSection[cur.Name][h] = true
					cur.Hosts = append(cur.Hosts, h)
				}
				if f.HostVars[h] == nil {
					f.HostVars[h] = map[string]string{}
					f.hostVarLine[h] = map[string]int{}
				}
				for k, v := range vars {
					f.HostVars[h][k] = v
					f.hostVarLine[h][k] = lineNo
				}
			}
			if len(f.HostVars) > maxRange {
				return nil, fmt.Errorf("%s:%d: the inventory lists more than %d hosts; check the ranges for a typo", name, lineNo, maxRange)
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
	// The implicit groups: all holds every host; ungrouped the hosts that
	// no group other than all lists, directly or through children.
	inGroup := map[string]bool{}
	for _, n := range f.order {
		if n == "all" || n == "ungrouped" {
			continue
		}
		hosts, err := f.Hosts(n)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: [%s]: %w", name, f.Groups[n].line, n, err)
		}
		for _, h := range hosts {
			inGroup[h] = true
		}
	}
	ug := group("ungrouped", 0)
	ug.Hosts = slices.DeleteFunc(ug.Hosts, func(h string) bool { return inGroup[h] })
	listed := map[string]bool{}
	for _, h := range ug.Hosts {
		listed[h] = true
	}
	for _, h := range sortedNames(f.HostVars) {
		if !inGroup[h] && !listed[h] {
			ug.Hosts = append(ug.Hosts, h)
		}
	}
	all := group("all", 0)
	all.Hosts = sortedNames(f.HostVars)
	return f, nil
}

// splitPort splits Ansible's host:port. A pattern with more than one colon
// outside a range is an IPv6 address, which takes no port in INI syntax.
func splitPort(s string) (host, port string, err error) {
	colons, inRange := 0, false
	last := -1
	for i, c := range s {
		switch c {
		case '[':
			inRange = true
		case ']':
			inRange = false
		case ':':
			if !inRange {
				colons++
				last = i
			}
		}
	}
	if colons != 1 {
		return s, "", nil
	}
	host, port = s[:last], s[last+1:]
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if host == "" {
		return "", "", fmt.Errorf("no host name before :%s", port)
	}
	return host, port, nil
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

// depths returns each group's depth below the groups that contain it
// (Ansible applies a parent's vars before a child's), computed once.
func (f *File) depths() map[string]int {
	if f.depthCache != nil {
		return f.depthCache
	}
	depth := map[string]int{}
	var walk func(g string, d int)
	walk = func(g string, d int) {
		if cur, ok := depth[g]; ok && cur >= d || d > len(f.Groups) {
			return
		}
		depth[g] = d
		for _, c := range f.Groups[g].Children {
			walk(c, d+1)
		}
	}
	for _, n := range f.order {
		walk(n, 0)
	}
	f.depthCache = depth
	return depth
}

// members returns the hosts of group as a set, resolved once.
func (f *File) members(group string) map[string]bool {
	if m, ok := f.memberCache[group]; ok {
		return m
	}
	m := map[string]bool{}
	if hosts, err := f.Hosts(group); err == nil {
		for _, h := range hosts {
			m[h] = true
		}
	}
	if f.memberCache == nil {
		f.memberCache = map[string]map[string]bool{}
	}
	f.memberCache[group] = m
	return m
}

// Vars returns a host's variables as Ansible sees them: all:vars first,
// then the vars of every group it is in, parents before children (by
// depth, then name, as Ansible orders groups of equal depth), then the
// host's own.
func (f *File) Vars(host string) map[string]string {
	groupVars, hostVars := f.varLayers(host)
	out := map[string]string{}
	for _, l := range []layer{groupVars, hostVars} {
		for k, d := range l {
			out[k] = d.raw
		}
	}
	return out
}

// varLayers returns a host's inventory variables as two of Ansible's
// precedence levels: the group vars (all:vars, then each group's, parents
// before children) and the host's own, each with the line that set it.
func (f *File) varLayers(host string) (groupVars, hostVars layer) {
	return f.layersOf(host, f.varGroups(host))
}

// varGroups returns the groups whose vars apply to host, in the order
// Ansible applies them: all, then by depth, then name.
func (f *File) varGroups(host string) []string {
	depth := f.depths()
	type gd struct {
		name  string
		depth int
	}
	var member []gd
	for _, n := range f.order {
		if n != "all" && f.members(n)[host] {
			member = append(member, gd{n, depth[n]})
		}
	}
	sort.SliceStable(member, func(i, j int) bool {
		if member[i].depth != member[j].depth {
			return member[i].depth < member[j].depth
		}
		return member[i].name < member[j].name
	})
	out := make([]string, 0, len(member)+1)
	if f.Groups["all"] != nil {
		out = append(out, "all")
	}
	for _, m := range member {
		out = append(out, m.name)
	}
	return out
}

func (f *File) layersOf(host string, groups []string) (groupVars, hostVars layer) {
	groupVars, hostVars = layer{}, layer{}
	for _, n := range groups {
		g := f.Groups[n]
		for k, v := range g.Vars {
			groupVars[k] = definition{raw: v, where: fmt.Sprintf("%s:%d ([%s:vars])", f.name, g.varLine[k], g.Name)}
		}
	}
	for k, v := range f.HostVars[host] {
		hostVars[k] = definition{raw: v, where: fmt.Sprintf("%s:%d (host vars)", f.name, f.hostVarLine[host][k])}
	}
	return groupVars, hostVars
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

// maxRange bounds the hosts one pattern expands to, and the hosts of a whole
// inventory, so a typo such as compute[1:99999999] (or many lines of large
// ranges) is an error instead of exhausting memory.
const maxRange = 100000

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
		if (b-a)/step+1 > maxRange {
			return nil, fmt.Errorf("range [%s] gives more than %d hosts", spec, maxRange)
		}
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
	if len(items) > maxRange {
		return nil, fmt.Errorf("range [%s] gives %d hosts, more than %d", spec, len(items), maxRange)
	}
	rest, err := expand(suffix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, it := range items {
		for _, r := range rest {
			out = append(out, prefix+it+r)
		}
		if len(out) > maxRange {
			return nil, fmt.Errorf("host pattern %q gives more than %d hosts", pattern, maxRange)
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
