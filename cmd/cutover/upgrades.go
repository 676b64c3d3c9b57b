package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

func newListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list [--state PHASE] [--auditor URL]",
		Aliases: []string{"ls"},
		Short:   "list upgrades, newest first",
		Long: `List the upgrades the planner holds, newest first, with their live phase.
The planner keeps a record of each upgrade in the cutover-upgrades bucket;
one that was purged from it, or lost with the NATS store, is not listed.
With --auditor the list also holds every upgrade the auditor recorded: the
planner's live phase where it has one, else the auditor's state (SOURCE
auditor), which may also be requested, planned, rollback-failed or unknown.`,
		Example: "  cutover list\n  cutover list --state running,paused\n  cutover list --auditor https://auditor.example:8080 --auditor-ca ca.pem\n  cutover list -o json | jq -r '.[].id'",
		Args:    cli.NoArgs,
	}
	states := cmd.Flags().StringSlice("state", nil, "only upgrades in these phases: "+strings.Join(upgrades.Phases, ", ")+"; with --auditor also "+strings.Join(upgrades.AuditorStates, ", "))
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(append(slices.Clone(upgrades.Phases), upgrades.AuditorStates...), cobra.ShellCompDirectiveNoFileComp))
	limit := cmd.Flags().Int("limit", 0, "show at most this many (0: all)")
	output := cli.OutputFlag(cmd, "text", "json")
	aopts := auditorFlags(cmd, "also list every upgrade this auditor recorded")
	nopts := cli.NATSFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		aud, err := aopts.auditor()
		if err != nil {
			return err
		}
		for _, s := range *states {
			switch {
			case slices.Contains(upgrades.Phases, s):
			case slices.Contains(upgrades.AuditorStates, s) && aud == nil:
				return usageErrorf("--state %s is the auditor's word for an upgrade the planner no longer holds; give --auditor too", s)
			case !slices.Contains(upgrades.AuditorStates, s):
				return usageErrorf("--state %q is not a phase; use %s", s, strings.Join(upgrades.Phases, ", "))
			}
		}
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			return upgrades.List(ctx, js, cmd.OutOrStdout(), upgrades.ListOptions{States: *states, Limit: *limit, Format: output.Value, Auditor: aud})
		})
	}
	return cmd
}

func newHistoryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history ID|PREFIX|RELEASE",
		Short: "an upgrade's events, oldest first (the auditor's timeline)",
		Long: `Print every event of one upgrade, oldest first: the same timeline the
auditor records. The events come from the event stream (kept 30 days by
default); with --auditor they come from the auditor's history API instead,
which keeps them as long as its database does (and knows upgrades the
planner no longer holds). -o json prints a JSON array of CloudEvents.`,
		Example: "  cutover history 019a7c3e\n  cutover history 2025.1.1 -o json | jq '.[].type'\n  cutover history 019a7c3e --auditor http://127.0.0.1:8080",
		Args:    cli.ExactArgs(1, "one upgrade: its id, a unique prefix of it, or its release name"),
	}
	output := cli.OutputFlag(cmd, "text", "json")
	aopts := auditorFlags(cmd, "read from this auditor's HTTP API instead of the stream")
	nopts := cli.NATSFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		aud, err := aopts.auditor()
		if err != nil {
			return err
		}
		var evs []events.Event
		if aud != nil {
			evs, err = aud.History(ctx, args[0])
		} else {
			err = nopts.With(ctx, func(ctx context.Context, js jetstream.JetStream) (err error) {
				evs, err = upgrades.History(ctx, js, args[0])
				return err
			})
		}
		if err != nil {
			return err
		}
		return upgrades.Print(cmd.OutOrStdout(), evs, output.Value)
	}
	return cmd
}

// completeUpgrades completes an upgrade argument with the ids and release
// names the planner knows (cutover completion), asking NATS for at most 2s.
func completeUpgrades(nopts *cli.NATS) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		nc, js, err := nopts.Connect(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer nc.Close()
		ups, err := planner.ListUpgrades(ctx, js)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, u := range ups {
			if strings.HasPrefix(u.ID, toComplete) {
				out = append(out, cobra.CompletionWithDesc(u.ID, u.Release.Name+", "+u.Phase))
			}
			if u.Release.Name != "" && strings.HasPrefix(u.Release.Name, toComplete) && !slices.Contains(out, u.Release.Name) {
				out = append(out, u.Release.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
