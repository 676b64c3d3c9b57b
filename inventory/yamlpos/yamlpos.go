// Package yamlpos finds the line of a field in a parsed YAML document, so
// validation errors can name the file, line and field of every problem.
package yamlpos

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Line returns the line of the deepest node of path that exists in root.
// Path elements are mapping keys, or decimal indexes into sequences.
func Line(root *yaml.Node, path []string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

// Join renders a path as a field name: containers.0.image becomes
// containers[0].image.
func Join(path []string) string {
	var b strings.Builder
	for i, s := range path {
		if _, err := strconv.Atoi(s); err == nil && i > 0 {
			b.WriteString("[" + s + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// Explain rewrites an error of yaml.v3 reading file name for the person
// who wrote the file: each problem as "file:line: what", field problems
// without Go type names, an empty file said so, and a syntax error at the
// line whose indentation is wrong (yaml.v3 reports where the enclosing
// block began, often lines earlier). known, when set, is appended to
// unknown-field problems (e.g. the fields allowed there).
func Explain(name string, raw []byte, err error, known string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the file is empty (or holds only comments); see the format in the cutover README", name)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var errs []error
		for _, e := range te.Errors {
			errs = append(errs, fmt.Errorf("%s:%s", name, typeProblem(e, known)))
		}
		return errors.Join(errs...)
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimPrefix(msg, m[0])
	}
	if bad, why := badIndent(raw); bad > line {
		return fmt.Errorf("%s:%d: not valid YAML: %s (%s)", name, bad, msg, why)
	}
	if line > 0 {
		return fmt.Errorf("%s:%d: not valid YAML: %s", name, line, msg)
	}
	return fmt.Errorf("%s: not valid YAML: %s", name, msg)
}

var (
	lineRE      = regexp.MustCompile(`^line (\d+): `)
	unknownRE   = regexp.MustCompile(`^line (\d+): field (\S+) not found in type .*$`)
	unmarshalRE = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

// typeProblem says one of yaml.v3's decoding problems in user words:
// "12: unknown field colour" instead of "line 12: field colour not found
// in type inventory.Node".
func typeProblem(e, known string) string {
	if m := unknownRE.FindStringSubmatch(e); m != nil {
		s := fmt.Sprintf("%s: field %s is not known here (a typo, or the wrong indentation?)", m[1], m[2])
		if known != "" {
			s += "; " + known
		}
		return s
	}
	if m := unmarshalRE.FindStringSubmatch(e); m != nil {
		return fmt.Sprintf("%s: %s %q where %s is expected", m[1], yamlKind(m[2]), m[3], goKind(m[4]))
	}
	return strings.TrimPrefix(e, "line ")
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "text"
	case "int", "float":
		return "a number"
	case "bool":
		return "true/false"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	return tag
}

func goKind(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "."):
		return "a mapping (key: value lines)"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "text"
	}
	return t
}

// badIndent finds the first line whose indentation matches no enclosing
// block: the usual cause of "did not find expected key" and "mapping
// values are not allowed", which yaml.v3 reports at the block's start. It
// returns 0 when every line's indentation is consistent.
func badIndent(raw []byte) (int, string) {
	stack := []int{0}
	inBlock, blockIndent := false, 0
	for i, l := range strings.Split(string(raw), "\n") {
		t := strings.TrimLeft(l, " ")
		indent := len(l) - len(t)
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "---") {
			continue
		}
		if inBlock && indent > blockIndent {
			continue // inside a | or > scalar
		}
		inBlock = false
		if indent > stack[len(stack)-1] {
			stack = append(stack, indent) // a nested block begins
		} else {
			for len(stack) > 1 && indent < stack[len(stack)-1] {
				stack = stack[:len(stack)-1]
			}
			if indent != stack[len(stack)-1] {
				return i + 1, fmt.Sprintf("its indentation of %d spaces matches no enclosing block", indent)
			}
		}
		// "- key: v" opens a mapping at the key's column.
		for strings.HasPrefix(t, "- ") {
			t = strings.TrimLeft(t[2:], " ")
			stack = append(stack, len(l)-len(t))
		}
		if v := strings.TrimSpace(t); strings.HasSuffix(v, "|") || strings.HasSuffix(v, ">") || strings.HasSuffix(v, "|-") || strings.HasSuffix(v, ">-") {
			inBlock, blockIndent = true, indent
		}
	}
	return 0, ""
}
