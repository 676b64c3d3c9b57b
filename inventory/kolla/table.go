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
	Name       string           `yaml:"name"`
	Group      string           `yaml:"group"`
	Enabled    string           `yaml:"enabled"`
	PerHost    bool             `yaml:"per_host"`
	Containers []TableContainer `yaml:"containers"`
	DependsOn  []string         `yaml:"depends_on"`
}

// TableContainer is one container of a kolla service.
type TableContainer struct {
	Name         string `yaml:"name"`
	Image        string `yaml:"image"`
	WorkloadHost bool   `yaml:"workload_host"`
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
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read globals: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %w", path, err)
	}
	out := map[string]string{}
	for k, v := range doc {
		switch x := v.(type) {
		case bool:
			out[k] = map[bool]string{true: "yes", false: "no"}[x]
		case string:
			out[k] = x
		case int, int64, uint64, float64:
			out[k] = fmt.Sprint(x)
		}
	}
	return out, nil
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

// imageBase returns <docker_registry>/<docker_namespace>/<prefix>, as
// kolla's docker_image_url, and the tag every image shares.
func (s *settings) images(t *Table) (base, tag string, err error) {
	reg, err := s.value("docker_registry", 0)
	if err != nil {
		return "", "", err
	}
	ns, err := s.value("docker_namespace", 0)
	if err != nil {
		return "", "", err
	}
	prefix, err := s.value("docker_image_name_prefix", 0)
	if err != nil {
		return "", "", err
	}
	if reg != "" {
		base = reg + "/"
	}
	base += ns + "/" + prefix
	if v, ok := s.user["openstack_tag"]; ok {
		if _, isExpr := jinja(v); !isExpr {
			return base, v, nil
		}
	}
	rel, err := s.value("openstack_release", 0)
	if err != nil {
		return "", "", err
	}
	distro, err := s.value("kolla_base_distro", 0)
	if err != nil {
		return "", "", err
	}
	ver, err := s.value("kolla_base_distro_version", 0)
	if err != nil {
		return "", "", err
	}
	if ver == "" {
		ver = t.DistroVersions[distro]
		if ver == "" {
			return "", "", fmt.Errorf("%s: kolla_base_distro %q is not one of centos, debian, rocky, ubuntu; set kolla_base_distro_version or openstack_tag", s.source, distro)
		}
	}
	suffix, err := s.value("openstack_tag_suffix", 0)
	if err != nil {
		return "", "", err
	}
	return base, rel + "-" + distro + "-" + ver + suffix, nil
}
