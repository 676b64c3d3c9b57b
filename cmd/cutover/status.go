package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/services/planner"
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
	nopts := natsFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		id, err := upgrades.Resolve(ctx, js, args[0])
		if err != nil {
			return err
		}
		u, err := planner.LoadUpgrade(ctx, js, id)
		if err != nil {
			return err
		}
		if output.Value == "json" {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(u); err != nil {
				return err
			}
		} else {
			upgrades.PrintStatus(cmd.OutOrStdout(), u)
		}
		return upgrades.StatusExit(u)
	}
	return cmd
}
