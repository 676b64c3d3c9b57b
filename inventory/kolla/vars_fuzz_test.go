package kolla

import (
	"strings"
	"testing"
)

// FuzzResolve evaluates three variables that refer to each other in any
// way: the resolver returns a value or an error, never panics, loops or
// grows a value past its bound, and a value without braces is itself.
func FuzzResolve(f *testing.F) {
	f.Add("{{ b }}-{{ c }}", "{{ c ~ '.3' }}", "2025.1")
	f.Add("{{ a }}", "{{ b }}", "x")                                            // self reference
	f.Add("{{ b }}", "{{ c }}", "{{ a }}")                                      // a cycle of three
	f.Add("{{ b }}{{ b }}{{ b }}", "{{ c }}{{ c }}{{ c }}", "0123456789abcdef") // growth
	f.Add("{{ missing }}", "{% if x %}", "{{ 'unterminated }}")
	f.Add("{{ c | default('x') }}", "{{ 'a' if c else 'b' }}", "{{ c[0] }}")
	f.Add("{ not a template }", "{{}}", "{{ ~ }}")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		r := newResolver(layer{
			"a": {raw: a, where: "g.yml:1"},
			"b": {raw: b, where: "g.yml:2"},
			"c": {raw: c, where: "g.yml:3"},
		})
		v, err := r.value("a", nil, "")
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error")
			}
			return
		}
		if len(v) > maxValueLen {
			t.Errorf("value of %d bytes, bound %d", len(v), maxValueLen)
		}
		if !strings.Contains(a, "{") && v != a {
			t.Errorf("plain %q evaluated to %q", a, v)
		}
		if again, err := r.value("a", nil, ""); err != nil || again != v {
			t.Errorf("second evaluation %q, %v; first %q", again, err, v)
		}
	})
}

// FuzzReadGlobals feeds arbitrary YAML to the globals.yml decoder: it
// returns settings or an error, never panics, and every setting has its
// line.
func FuzzReadGlobals(f *testing.F) {
	f.Add("---\nopenstack_release: 2025.10\nenable_cinder: yes\nnova_tag: \"{{ openstack_tag }}\"\n")
	f.Add("- a\n- b\n")
	f.Add("a: &x 1\nb: *x\nc: [1, 2]\nd:\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		values, lines, err := parseGlobals("g.yml", []byte(raw))
		if err != nil {
			return
		}
		for k := range values {
			if lines[k] < 1 {
				t.Errorf("setting %q has no line", k)
			}
		}
	})
}
