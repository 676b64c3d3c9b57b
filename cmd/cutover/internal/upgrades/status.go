package upgrades

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/services/planner"
)

// StatusExit is the exit code of cutover status for an upgrade: 0 when it
// completed or runs, 1 when it failed, rolled back, rolls back or was
// aborted, 3 when it waits for an operator.
func StatusExit(u *planner.Upgrade) error {
	switch u.Phase {
	case planner.PhaseCompleted, planner.PhaseRunning:
		return nil
	case planner.PhasePaused:
		return exit.Error{Code: 3}
	}
	return exit.Error{Code: 1}
}

// PrintStatus writes the planner's state of u as text.
func PrintStatus(w io.Writer, u *planner.Upgrade) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "upgrade\t%s\n", u.ID)
	fmt.Fprintf(tw, "release\t%s\n", u.Release.Name)
	fmt.Fprintf(tw, "phase\t%s\n", u.Phase)
	if u.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", u.Reason)
	}
	fmt.Fprintf(tw, "requested\t%s (%s)\n", u.RequestedAt.Local().Format("2006-01-02 15:04:05"), render.Ago(u.RequestedAt, time.Now()))
	waves := len(u.Plan.Waves)
	switch {
	case waves == 0:
		fmt.Fprintf(tw, "waves\tnone: nothing to change\n")
	case u.Wave >= waves:
		fmt.Fprintf(tw, "waves\t%s, all done\n", render.Plural(waves, "wave"))
	default:
		fmt.Fprintf(tw, "waves\t%s, at wave %d\n", render.Plural(waves, "wave"), u.Wave)
	}
	if u.AwaitingPromotion {
		fmt.Fprintf(tw, "canary\tdone; waiting for cutover promote %s\n", u.ID)
	}
	if u.PauseRequested {
		fmt.Fprintln(tw, "pause\trequested: no new wave starts after the one in flight")
	}
	if u.Barrier != "" {
		fmt.Fprintf(tw, "waiting\t%s\n", u.Barrier)
	}
	if g := u.Gate; g != nil {
		fmt.Fprintf(tw, "waiting\twave %d waits for the auditor's healthy verdicts on wave %d: %s (for %s, at most %s)\n",
			g.Wave+1, g.Wave, render.List(g.Waiting), render.Duration(time.Since(g.Since)), render.Duration(u.VerdictTimeout))
	}
	if rb := u.Rollback; rb != nil {
		line := fmt.Sprintf("%s: %s returned to their previous images", rb.Reason, render.Plural(len(rb.Done), "node"))
		if len(rb.Done) > 0 {
			line += " (" + render.List(rb.Done) + ")"
		}
		if rb.Current != "" {
			line += ", " + rb.Current + " in progress"
		}
		if len(rb.Queue) > 0 {
			line += fmt.Sprintf(", %s to go", render.Plural(len(rb.Queue), "node"))
		}
		if rb.Error != "" {
			line += "; failed: " + rb.Error
		}
		fmt.Fprintf(tw, "rollback\t%s\n", line)
	}
	for _, m := range u.Migrations {
		line := fmt.Sprintf("%s (%s): version %d -> %d; expand %s, contract %s", m.Service, m.Driver, m.FromVersion, m.ToVersion, m.Expand, m.Contract)
		if m.Rollback != "" {
			line += ", rollback " + m.Rollback
		}
		if m.SnapshotID != "" {
			line += " (snapshot " + m.SnapshotID + ")"
		}
		fmt.Fprintf(tw, "database\t%s\n", line)
	}
	if err := tw.Flush(); err != nil {
		return
	}
	nodes := make([]string, 0, len(u.Nodes))
	for n := range u.Nodes {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := u.Nodes[nodes[i]], u.Nodes[nodes[j]]
		return a.Wave < b.Wave || a.Wave == b.Wave && nodes[i] < nodes[j]
	})
	if len(nodes) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tNODE\tSTEP\tCONTAINERS")
	for _, n := range nodes {
		np := u.Nodes[n]
		var cs []string
		for _, r := range np.Results {
			cs = append(cs, r.Container+" "+r.Result)
		}
		if len(cs) == 0 {
			for _, t := range np.Targets {
				cs = append(cs, t.Container)
			}
		}
		detail := strings.Join(cs, ", ")
		if np.Error != "" {
			detail += " (" + np.Error + ")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", np.Wave, np.Node, np.Status, detail)
	}
	_ = tw.Flush()
}

// Status prints the planner's state of the upgrade arg names, as text or
// json; its error is the exit code StatusExit gives.
func Status(ctx context.Context, js jetstream.JetStream, w io.Writer, arg, format string) error {
	id, err := Resolve(ctx, js, arg)
	if err != nil {
		return err
	}
	u, err := planner.LoadUpgrade(ctx, js, id)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(u); err != nil {
			return err
		}
	} else {
		PrintStatus(w, u)
	}
	return StatusExit(u)
}
