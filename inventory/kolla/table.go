package kolla

import (
	_ "embed"
	"fmt"
	"os"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed services.yaml
var tableYAML []byte

// Table is the service table of one kolla-ansible release (services.yaml).
type Table struct {
	// Release is the kolla-ansible release the table describes.
	Release string `yaml:"release"`
	// Globals are the defaults of the globals.yml settings the table reads.
	Globals map[string]string `yaml:"globals"`
	// DistroVersions maps kolla_base_distro to kolla_base_distro_version.
	DistroVersions map[string]string `yaml:"distro_versions"`
	// NotServices are groups that run no container of their own.
	NotServices []string `yaml:"not_services"`
	// Services are kolla's services, in deploy order.
	Services []TableService `yaml:"services"`
}

// TableService is one kolla service as cutover imports it.
type TableService struct {
	Name    string `yaml:"name"`
	Group   string `yaml:"group"`
	Enabled string `yaml:"enabled"`
	// Project names the role's <project>_tag variable (nova → nova_tag,
	// itself "{{ openstack_tag }}"), which the containers' tags default
	// to; empty when the role has none and they default to openstack_tag.
	Project    string           `yaml:"project"`
	PerHost    bool             `yaml:"per_host"`
	Containers []TableContainer `yaml:"containers"`
	DependsOn  []string         `yaml:"depends_on"`
}

// TableContainer is one container of a kolla service.
type TableContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	// Var is the prefix of the role's <var>_image, <var>_tag and
	// <var>_image_full variables (default: the container name).
	Var string `yaml:"var"`
	// Tag is the tag variable <var>_image_full uses, when it is not
	// <var>_tag (keystone's keystone_service_tag).
	Tag          string `yaml:"tag"`
	WorkloadHost bool   `yaml:"workload_host"`
}

// vars returns the container's image, tag and full-image variable names.
func (c TableContainer) vars() (image, tag, full string) {
	v := c.Var
	if v == "" {
		v = c.Name
	}
	tag = c.Tag
	if tag == "" {
		tag = v + "_tag"
	}
	return v + "_image", tag, v + "_image_full"
}

// DefaultTable returns the service table built into cutover, a fresh
// copy the caller may change.
func DefaultTable() (*Table, error) {
	var t Table
	if err := yaml.Unmarshal(tableYAML, &t); err != nil {
		return nil, fmt.Errorf("read built-in kolla service table: %w", err)
	}
	return &t, nil
}

// builtinTable is the built-in table read once; Convert only reads it.
var builtinTable = sync.OnceValues(DefaultTable)

// LoadGlobals reads a kolla globals.yml: every top-level setting, as a
// string (yes/no for booleans). Settings that are not scalars are skipped.
func LoadGlobals(path string) (map[string]string, error) {
	g, _, err := ReadGlobals(path)
	return g, err
}

// ReadGlobals reads a kolla globals.yml as LoadGlobals does, with the line
// of each setting (Options.GlobalsLines). A value is kept as written
// (openstack_release: 2025.10 stays 2025.10), booleans become yes/no, and
// settings that are not scalars, or empty, are skipped.
func ReadGlobals(path string) (map[string]string, map[string]int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read globals: %w", err)
	}
	return parseGlobals(path, raw)
}

func parseGlobals(path string, raw []byte) (map[string]string, map[string]int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	values, lines := map[string]string{}, map[string]int{}
	if len(doc.Content) == 0 {
		return values, lines, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return values, lines, nil // only comments, or ---
	}
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("%s:%d: globals.yml is not a mapping of settings (key: value)", path, root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode {
			continue
		}
		switch v.ShortTag() {
		case "!!null":
			continue
		case "!!bool":
			var b bool
			if err := v.Decode(&b); err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %s: %w", path, v.Line, k.Value, err)
			}
			values[k.Value] = map[bool]string{true: "yes", false: "no"}[b]
		default:
			values[k.Value] = v.Value
		}
		lines[k.Value] = k.Line
	}
	return values, lines, nil
}

// settings resolves globals: the operator's globals.yml over the table's
// defaults. Expressions are the small subset kolla's enable_* defaults use.
type settings struct {
	user, defaults map[string]string
	source         string // the globals file, for errors
}

func (s *settings) raw(name string) (string, bool) {
	if v, ok := s.user[name]; ok {
		return v, true
	}
	v, ok := s.defaults[name]
	return v, ok
}

// value returns a setting as a string, following a {{ other }} reference.
func (s *settings) value(name string, depth int) (string, error) {
	v, ok := s.raw(name)
	if !ok {
		return "", nil
	}
	e, isExpr := jinja(v)
	if !isExpr {
		return v, nil
	}
	if depth > 20 {
		return "", fmt.Errorf("%s: %s refers to itself through other settings", s.source, name)
	}
	if isName(e) {
		return s.value(e, depth+1)
	}
	return "", fmt.Errorf("%s: %s: cannot evaluate %q; set it to a plain value", s.source, name, v)
}

// enabled evaluates a boolean expression: yes/no, a setting's name,
// "not x", "x and y", "x or y", "x == 'v'", "x != 'v'".
func (s *settings) enabled(expr string, depth int) (bool, error) {
	if depth > 20 {
		return false, fmt.Errorf("%s: %q refers to itself through other settings", s.source, expr)
	}
	e, _ := jinja(expr)
	if parts := splitWord(e, " or "); len(parts) > 1 {
		for _, p := range parts {
			v, err := s.enabled(p, depth+1)
			if err != nil || v {
				return v, err
			}
		}
		return false, nil
	}
	if parts := splitWord(e, " and "); len(parts) > 1 {
		for _, p := range parts {
			v, err := s.enabled(p, depth+1)
			if err != nil || !v {
				return v, err
			}
		}
		return true, nil
	}
	if rest, ok := strings.CutPrefix(e, "not "); ok {
		v, err := s.enabled(rest, depth+1)
		return !v, err
	}
	for _, op := range []string{"==", "!="} {
		if l, r, ok := strings.Cut(e, op); ok {
			lv, err := s.value(strings.TrimSpace(l), depth+1)
			if err != nil {
				return false, err
			}
			eq := lv == unquote(strings.TrimSpace(r))
			return eq == (op == "=="), nil
		}
	}
	if b, ok := literalBool(e); ok {
		return b, nil
	}
	if !isName(e) {
		return false, fmt.Errorf("%s: cannot evaluate %q; set the enable_* settings it uses to yes or no", s.source, expr)
	}
	v, ok := s.raw(e)
	if !ok {
		return false, nil // kolla treats an unset enable_* as off
	}
	if b, ok := literalBool(v); ok {
		return b, nil
	}
	b, err := s.enabled(v, depth+1)
	if err != nil {
		return false, fmt.Errorf("%s (setting %s): %w", s.source, e, err)
	}
	return b, nil
}

// jinja strips "{{ ... }}" and a trailing "| bool" filter.
func jinja(v string) (string, bool) {
	v = strings.TrimSpace(v)
	inner, ok := strings.CutPrefix(v, "{{")
	if ok {
		if inner, ok = strings.CutSuffix(inner, "}}"); !ok {
			return v, false
		}
		v = strings.TrimSpace(inner)
	}
	v = strings.TrimSpace(strings.ReplaceAll(v, "| bool", ""))
	v = strings.TrimSpace(strings.ReplaceAll(v, "|bool", ""))
	return strings.Trim(v, "()"), ok
}

func splitWord(e, word string) []string {
	parts := strings.Split(e, word)
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func literalBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "on", "1":
		return true, true
	case "no", "false", "off", "0", "":
		return false, true
	}
	return false, false
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// roleDefaults returns the image variables kolla-ansible's role defaults
// set, as the table describes them: per project <project>_tag:
// "{{ openstack_tag }}"; per container <var>_image: "{{ docker_image_url
// }}<image>", <var>_tag: "{{ <project>_tag }}" and <var>_image_full: "{{
// <var>_image }}:{{ <var>_tag }}". Two services that define one variable
// differently are a table error.
func (t *Table) roleDefaults() (layer, error) {
	l := layer{}
	set := func(svc, name, raw string) error {
		d := definition{raw: raw, where: fmt.Sprintf("kolla-ansible %s default (service %s)", t.Release, svc)}
		if old, ok := l[name]; ok && old.raw != raw {
			return fmt.Errorf("service table: %s is %q for one service and %q for %s; give the containers distinct var or tag", name, old.raw, raw, svc)
		}
		if _, ok := l[name]; !ok {
			l[name] = d
		}
		return nil
	}
	for _, ts := range t.Services {
		parent := "openstack_tag"
		if ts.Project != "" {
			parent = ts.Project + "_tag"
			if err := set(ts.Name, parent, "{{ openstack_tag }}"); err != nil {
				return nil, err
			}
		}
		for _, c := range ts.Containers {
			image, tag, full := c.vars()
			if tag != parent {
				if err := set(ts.Name, tag, "{{ "+parent+" }}"); err != nil {
					return nil, err
				}
			}
			if err := set(ts.Name, image, "{{ docker_image_url }}"+c.Image); err != nil {
				return nil, err
			}
			if err := set(ts.Name, full, "{{ "+image+" }}:{{ "+tag+" }}"); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// groupVarsAll returns the table's globals as kolla-ansible's
// group_vars/all sets them, with docker_image_url and
// kolla_base_distro_version, whose Jinja (a conditional, a map lookup)
// is evaluated here.
func (t *Table) groupVarsAll() layer {
	where := fmt.Sprintf("kolla-ansible %s group_vars/all", t.Release)
	l := layer{}
	for k, v := range t.Globals {
		l[k] = definition{raw: v, where: where}
	}
	if _, ok := l["docker_image_url"]; !ok {
		l["docker_image_url"] = definition{where: where, compute: func(r *resolver) (string, error) {
			d, _ := r.lookup("docker_image_url")
			var parts [3]string
			for i, n := range []string{"docker_registry", "docker_namespace", "docker_image_name_prefix"} {
				v, err := r.value(n, &d, "docker_image_url")
				if err != nil {
					return "", err
				}
				parts[i] = v
			}
			base := parts[1] + "/" + parts[2]
			if parts[0] != "" {
				base = parts[0] + "/" + base
			}
			return base, nil
		}}
	}
	if _, ok := l["kolla_base_distro_version"]; !ok {
		l["kolla_base_distro_version"] = definition{where: where, compute: func(r *resolver) (string, error) {
			d, _ := r.lookup("kolla_base_distro_version")
			distro, err := r.value("kolla_base_distro", &d, "kolla_base_distro_version")
			if err != nil {
				return "", err
			}
			if ver := t.DistroVersions[distro]; ver != "" {
				return ver, nil
			}
			src, _ := r.lookup("kolla_base_distro")
			return "", fmt.Errorf("%s: kolla_base_distro %q is not one of centos, debian, rocky, ubuntu; set kolla_base_distro_version or openstack_tag", src.where, distro)
		}}
	}
	return l
}
