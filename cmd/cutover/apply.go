package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner/manifest"
)

func newApplyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply -f release.yaml [--watch]",
		Short: "request an upgrade; prints the upgrade id",
		Long: `Request an upgrade to the release in a manifest. The planner plans it against
the live fleet and runs it wave by wave; apply prints the upgrade id, or with
--watch follows the upgrade until it ends.`,
		Example: "  cutover apply -f release.yaml\n  cutover apply -f release.yaml --watch",
		Args:    cli.NoArgs,
	}
	file := cli.FileFlag(cmd, "release manifest (YAML)")
	watch := cmd.Flags().Bool("watch", false, "follow the upgrade until it ends; exit 0 only if it completed")
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *file == "" {
			return usageErrorf("-f is required: the release manifest to apply, e.g. cutover apply -f release.yaml")
		}
		ctx := cmd.Context()
		req, err := manifest.Load(*file)
		if err != nil {
			return err
		}
		req.RequestedBy = "cutover apply"
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		e, err := events.New(events.Source("cli", ""), req)
		if err != nil {
			return err
		}
		if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), e.ID())
		if !*watch {
			return nil
		}
		return upgrades.Follow(ctx, js, e.ID(), cmd.OutOrStdout(), nil)
	}
	return cmd
}
