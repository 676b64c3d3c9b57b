package plan

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// JSON writes the plan as indented JSON.
func (p *Plan) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}

// Text writes the plan for a human: services and why, every phase, every
// wave, and every container of a released service with its reason.
func (p *Plan) Text(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "release %s: %d containers change, %d unchanged\n\n", p.Release, p.Changed, p.Unchanged)
	for _, w := range p.Warnings {
		fmt.Fprintf(b, "WARNING: %s\n", w)
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintln(b)
	}
	fmt.Fprintln(b, "services (rollout order):")
	for _, s := range p.Services {
		deps := ""
		if len(s.DependsOn) > 0 {
			deps = " after " + strings.Join(s.DependsOn, ",")
		}
		fmt.Fprintf(b, "  %-28s %-9s level %d%s, %d/%d instances change, max_unavailable %d: %s\n",
			s.Name, s.Operation, s.Level, deps, s.Changing, s.Instances, s.MaxUnavailable, s.Reason)
	}
	for i, ph := range p.Phases {
		fmt.Fprintf(b, "\nphase %d: %s\n", i+1, ph.Name)
		if len(ph.Steps) == 0 && len(ph.Waves) == 0 {
			fmt.Fprintln(b, "  (nothing to do)")
		}
		for _, st := range ph.Steps {
			who := ""
			if st.Service != "" {
				who = st.Service + ": "
			}
			fmt.Fprintf(b, "  - %s%s: %s\n", who, st.Action, st.Detail)
		}
		for _, wv := range ph.Waves {
			canary := ""
			if wv.Canary {
				canary = " (canary of " + strings.Join(wv.CanaryOf, " ") + ")"
			}
			nodes := "nodes"
			if len(wv.Nodes) == 1 {
				nodes = "node"
			}
			fmt.Fprintf(b, "  wave %d%s, level %d [%s]: %d %s\n", wv.Index, canary, wv.Level, strings.Join(wv.Services, " "), len(wv.Nodes), nodes)
			for _, n := range wv.Nodes {
				var cs []string
				for _, t := range n.Targets {
					cs = append(cs, t.Container)
				}
				drain := ""
				if n.Drain {
					drain = " drain first;"
				}
				fmt.Fprintf(b, "    %s:%s %s\n", n.Node, drain, strings.Join(cs, " "))
			}
		}
	}
	fmt.Fprintln(b, "\ncontainers:")
	for _, n := range p.Nodes {
		fmt.Fprintf(b, "  %s\n", n.Node)
		for _, c := range n.Containers {
			if c.Change {
				fmt.Fprintf(b, "    ~ %-28s %s → %s: %s\n", c.Container, c.FromImage, c.ToImage, c.Reason)
			} else {
				fmt.Fprintf(b, "    = %-28s %s: %s\n", c.Container, c.FromImage, c.Reason)
			}
		}
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write plan: %w", err)
	}
	return nil
}
