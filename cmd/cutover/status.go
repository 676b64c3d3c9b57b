package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
)

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "status ID|PREFIX|RELEASE",
		Short:   "show an upgrade's state",
		Example: "  cutover status 019a7c3e\n  cutover status 019a7c3e -o json",
		Long: `Show the planner's state of one upgrade: phase, waves and each node's step.
The upgrade is named by its id, a unique prefix of it, or its release name.
Exit 0 when it completed or is running, 1 when it failed, rolled back or was
aborted, 3 when it is paused (waiting for an operator).`,
		Args: cli.ExactArgs(1, "one upgrade: its id, a unique prefix of it, or its release name"),
	}
	output := cli.OutputFlag(cmd, "text", "json")
	nopts := cli.NATSFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			return upgrades.Status(ctx, js, cmd.OutOrStdout(), args[0], output.Value)
		})
	}
	return cmd
}
