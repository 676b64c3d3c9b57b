package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
)

func newWatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch [ID|PREFIX|RELEASE]",
		Short: "follow events live (one upgrade until it ends, or everything)",
		Long: `Follow the event stream. With an upgrade (its id, a unique prefix of it, or
its release name), replay that upgrade from its start and return when it
ends: exit 0 if it completed, 1 if it failed, paused or was aborted. An
upgrade the planner does not know fails at once. Without, print every new
event until interrupted (Ctrl-C exits 130). -o json prints one CloudEvent
per line, for jq.`,
		Example: "  cutover watch 019a7c3e\n  cutover watch\n  cutover watch -o json | jq -r .type",
		Args:    cli.MaxArgs(1, "one upgrade"),
	}
	output := cli.OutputFlag(cmd, "text", "json")
	nopts := cli.NATSFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			if len(args) == 0 {
				return upgrades.FollowAs(ctx, js, "", cmd.OutOrStdout(), output.Value, nil)
			}
			id, err := upgrades.Resolve(ctx, js, args[0])
			if err != nil {
				return err
			}
			return upgrades.FollowAs(ctx, js, id, cmd.OutOrStdout(), output.Value, nil)
		})
	}
	return cmd
}
