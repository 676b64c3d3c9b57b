package plan

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cutover-dev/cutover/events"
)

// Suggest returns the service of nodes that a release's unknown service
// name most likely meant, or "" when none is close: the service of a
// container called name, but for case and '_'/'-' (nova_api is the
// container of nova-api), a service
// spelled the same but for case and '_'/'-', or one within two edits.
func Suggest(name string, nodes []Node) string {
	norm := strings.NewReplacer("_", "-", ".", "-")
	want := strings.ToLower(norm.Replace(name))
	var services []string
	for _, n := range nodes {
		for _, c := range n.Containers {
			if c.Service == "" {
				continue
			}
			if strings.ToLower(norm.Replace(c.Name)) == want && c.Service != name {
				return c.Service
			}
			if !slices.Contains(services, c.Service) {
				services = append(services, c.Service)
			}
		}
	}
	slices.Sort(services)
	best, bestD := "", 3
	for _, s := range services {
		d := events.EditDistance(strings.ToLower(norm.Replace(s)), want)
		if d < bestD {
			best, bestD = s, d
		}
	}
	return best
}

// UnknownServices says, for each name no node runs, which service it may
// have meant: " (nova_api: did you mean nova-api?)", or "" when no name has
// a close match.
func UnknownServices(names []string, nodes []Node) string {
	var hints []string
	for _, n := range names {
		if s := Suggest(n, nodes); s != "" {
			hints = append(hints, fmt.Sprintf("%s: did you mean %s?", n, s))
		}
	}
	if len(hints) == 0 {
		return ""
	}
	return " (" + strings.Join(hints, "; ") + ")"
}
