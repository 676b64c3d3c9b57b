package kolla

import (
	"fmt"
	"strings"
)

// A definition is one variable as set in one place: globals.yml, the
// inventory, kolla-ansible's group_vars/all or a role default.
type definition struct {
	raw   string // the value as written
	where string // file:line, or which kolla-ansible default
	// compute, when set, replaces raw: a kolla-ansible default whose
	// Jinja (a conditional, a map lookup) cutover evaluates in Go.
	compute func(r *resolver) (string, error)
}

// layer holds the variables of one of Ansible's precedence levels.
type layer map[string]definition

// Bounds of one evaluation: Ansible has none, but an importer must stop on
// any input (a chain through every variable, a value that doubles at each
// step).
const (
	maxValueLen = 4096
	maxDepth    = 64
)

// resolver evaluates variables for one host as Ansible does for kolla's
// image variables: each name takes its definition from the highest layer
// that sets it, and templates are evaluated when used, so a role default
// such as nova_compute_tag: "{{ nova_tag }}" follows a nova_tag set in
// globals.yml. Only the Jinja that image settings use is understood:
// {{ name }}, quoted strings and ~ concatenation, any number of them in one
// value. Filters, conditionals and statements are refused, never guessed.
type resolver struct {
	layers []layer // lowest precedence first
	memo   map[string]string
	stack  []string // names being evaluated, for cycles
}

func newResolver(layers ...layer) *resolver {
	return &resolver{layers: layers, memo: map[string]string{}}
}

func (r *resolver) lookup(name string) (definition, bool) {
	for i := len(r.layers) - 1; i >= 0; i-- {
		if d, ok := r.layers[i][name]; ok {
			return d, true
		}
	}
	return definition{}, false
}

// value evaluates variable name; from names the definition that refers to
// it, for the error when it is set nowhere.
func (r *resolver) value(name string, from *definition, fromName string) (string, error) {
	if v, ok := r.memo[name]; ok {
		return v, nil
	}
	d, ok := r.lookup(name)
	if !ok {
		if from == nil {
			return "", fmt.Errorf("%s is not set in globals.yml, the inventory or kolla-ansible's defaults; set it in globals.yml", name)
		}
		return "", fmt.Errorf("%s: %s refers to %s, which is not set in globals.yml, the inventory or kolla-ansible's defaults; set %s in globals.yml or write the value itself", from.where, fromName, name, name)
	}
	for i, s := range r.stack {
		if s == name {
			cycle := append(append([]string(nil), r.stack[i:]...), name)
			var at []string
			for _, c := range cycle[:len(cycle)-1] {
				cd, _ := r.lookup(c)
				at = append(at, c+" at "+cd.where)
			}
			return "", fmt.Errorf("%s refer to each other in a cycle (%s); set one of them to a plain value", strings.Join(cycle, " → "), strings.Join(at, ", "))
		}
	}
	if len(r.stack) >= maxDepth {
		return "", fmt.Errorf("%s: %s: references nest more than %d deep; set it to a plain value", d.where, name, maxDepth)
	}
	r.stack = append(r.stack, name)
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()
	var v string
	var err error
	if d.compute != nil {
		v, err = d.compute(r)
	} else {
		v, err = r.render(name, d)
	}
	if err != nil {
		return "", err
	}
	r.memo[name] = v
	return v, nil
}

// render evaluates the template of definition d of variable name. The
// whole template is read first, then evaluated.
func (r *resolver) render(name string, d definition) (string, error) {
	segs, err := parseTemplate(name, d)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, seg := range segs {
		for _, t := range seg {
			v := t.literal
			if t.name != "" {
				if v, err = r.value(t.name, &d, name); err != nil {
					return "", err
				}
			}
			b.WriteString(v)
			if b.Len() > maxValueLen {
				return "", fmt.Errorf("%s: %s grows past %d characters; set it to a plain value", d.where, name, maxValueLen)
			}
		}
	}
	return b.String(), nil
}

// parseTemplate splits a value into its text and its {{ }} expressions,
// each a list of terms (text is one literal term).
func parseTemplate(name string, d definition) ([][]term, error) {
	s := d.raw
	var segs [][]term
	text := func(t string) {
		if t != "" {
			segs = append(segs, []term{{literal: t}})
		}
	}
	for s != "" {
		open := strings.IndexByte(s, '{')
		if open < 0 || open == len(s)-1 {
			text(s)
			break
		}
		switch s[open+1] {
		case '%', '#':
			return nil, refuse(name, d, "a Jinja statement or comment ({"+string(s[open+1])+" ... )")
		case '{':
		default:
			text(s[:open+1])
			s = s[open+1:]
			continue
		}
		text(s[:open])
		end := strings.Index(s[open:], "}}")
		if end < 0 {
			return nil, fmt.Errorf("%s: %s: %q opens {{ without closing it; close it with }}", d.where, name, d.raw)
		}
		terms, err := parseExpr(name, d, s[open+2:open+end])
		if err != nil {
			return nil, err
		}
		segs = append(segs, terms)
		s = s[open+end+2:]
	}
	return segs, nil
}

// A term of an expression: a variable name or a quoted string.
type term struct {
	name, literal string
}

// parseExpr reads the inside of one {{ }}: terms joined by ~, each a
// variable name or a quoted string. It reads the whole expression before
// anything is evaluated, so a filter is refused as a filter even when the
// variable it filters is missing or refers back.
func parseExpr(name string, d definition, expr string) ([]term, error) {
	var terms []term
	rest := strings.TrimSpace(expr)
	if rest == "" {
		return nil, refuse(name, d, "an empty {{ }}")
	}
	for {
		switch {
		case rest == "":
			return nil, refuse(name, d, "a ~ with nothing after it")
		case rest[0] == '\'' || rest[0] == '"':
			end := strings.IndexByte(rest[1:], rest[0])
			if end < 0 {
				return nil, fmt.Errorf("%s: %s: %q has an unterminated string; close the quote", d.where, name, d.raw)
			}
			terms = append(terms, term{literal: rest[1 : end+1]})
			rest = rest[end+2:]
		default:
			n := 0
			for n < len(rest) && isNameByte(rest[n]) {
				n++
			}
			word := rest[:n]
			if word == "" || word[0] >= '0' && word[0] <= '9' {
				return nil, refuse(name, d, unsupported(expr))
			}
			switch word {
			case "if", "else", "not", "and", "or", "in", "is", "true", "false", "True", "False", "none", "None":
				return nil, refuse(name, d, unsupported(expr))
			}
			terms = append(terms, term{name: word})
			rest = rest[n:]
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return terms, nil
		}
		if rest[0] != '~' {
			return nil, refuse(name, d, unsupported(expr))
		}
		rest = strings.TrimSpace(rest[1:])
	}
}

// unsupported names the construct an expression uses, for the error.
func unsupported(expr string) string {
	e := strings.TrimSpace(expr)
	switch {
	case strings.HasPrefix(e, "|") || strings.Contains(e, "|"):
		f := strings.TrimSpace(e[strings.IndexByte(e, '|')+1:])
		return "the filter | " + f
	case strings.Contains(" "+e+" ", " if ") || strings.Contains(" "+e+" ", " else "):
		return "a conditional (if/else)"
	case strings.ContainsAny(e, "[]"):
		return "an index or list"
	case strings.ContainsAny(e, "()"):
		return "a call or parentheses"
	case strings.ContainsAny(e, "+-*/%<>=!"):
		return "an operator other than ~"
	}
	return fmt.Sprintf("%q", e)
}

func refuse(name string, d definition, what string) error {
	return fmt.Errorf("%s: %s = %q uses %s, which cutover does not evaluate (it reads {{ name }}, quoted strings and ~ only); write the value itself in %s (a tag such as \"2025.1-ubuntu-noble\", or an image)", d.where, name, d.raw, what, name)
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
