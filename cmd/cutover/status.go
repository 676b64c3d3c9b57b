package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/services/planner"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "status ID",
		Short:   "show an upgrade's state",
		Example: "  cutover status 019a7c3e\n  cutover status 019a7c3e -o json",
		Args:    exactArgs(1, "one upgrade id (printed by cutover apply)"),
	}
	output := outputFlag(cmd, "text", "json")
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		u, err := planner.LoadUpgrade(ctx, js, args[0])
		if err != nil {
			return err
		}
		if output.value == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(u)
		}
		printStatus(cmd.OutOrStdout(), u)
		return nil
	}
	return cmd
}

func printStatus(w io.Writer, u *planner.Upgrade) {
	fmt.Fprintf(w, "upgrade  %s\nrelease  %s\nphase    %s\n", u.ID, u.Release.Name, u.Phase)
	if u.Reason != "" {
		fmt.Fprintf(w, "reason   %s\n", u.Reason)
	}
	fmt.Fprintf(w, "waves    %d (current %d)\n", len(u.Plan.Waves), u.Wave)
	nodes := make([]string, 0, len(u.Nodes))
	for n := range u.Nodes {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := u.Nodes[nodes[i]], u.Nodes[nodes[j]]
		return a.Wave < b.Wave || a.Wave == b.Wave && nodes[i] < nodes[j]
	})
	for _, n := range nodes {
		np := u.Nodes[n]
		fmt.Fprintf(w, "  wave %d  %-16s %-10s", np.Wave, n, np.Status)
		for _, r := range np.Results {
			fmt.Fprintf(w, " %s:%s", r.Container, r.Result)
		}
		if np.Error != "" {
			fmt.Fprintf(w, " (%s)", np.Error)
		}
		fmt.Fprintln(w)
	}
	for _, m := range u.Migrations {
		fmt.Fprintf(w, "database %s (%s): version %d -> %d; expand %s, contract %s", m.Service, m.Driver, m.FromVersion, m.ToVersion, m.Expand, m.Contract)
		if m.Rollback != "" {
			fmt.Fprintf(w, ", rollback %s", m.Rollback)
		}
		if m.SnapshotID != "" {
			fmt.Fprintf(w, " (snapshot %s)", m.SnapshotID)
		}
		fmt.Fprintln(w)
	}
	if u.Barrier != "" {
		fmt.Fprintf(w, "waiting  %s\n", u.Barrier)
	}
	if g := u.Gate; g != nil {
		fmt.Fprintf(w, "waiting  wave %d waits for the auditor's healthy verdicts on wave %d: %s (since %s, timeout %v)\n",
			g.Wave+1, g.Wave, strings.Join(g.Waiting, ", "), g.Since.Format(time.RFC3339), u.VerdictTimeout)
	}
	if u.PauseRequested {
		fmt.Fprintln(w, "pause    requested: no new wave starts after the one in flight")
	}
	if rb := u.Rollback; rb != nil {
		fmt.Fprintf(w, "rollback %s; done %v, queued %v\n", rb.Reason, rb.Done, rb.Queue)
	}
}
