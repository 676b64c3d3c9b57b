package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/planning"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// newPlanCmd prints the plan for a release: a dry run that changes
// nothing. Against an inventory file it needs no NATS; without one it plans
// against the live fleet, as the planner would.
func newPlanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan -f release.yaml [--inventory inventory.yaml]",
		Short: "dry run: every container's change and reason, phases and waves",
		Long: `Print, without changing anything, every container a release changes and
why, the phases and the waves. Without --inventory the plan is made against
the live fleet: what the node-updaters report in the cutover-nodes bucket,
as the planner will see it. With --inventory it is made against that file.

--detailed-exitcode (as Terraform's): exit 0 when nothing would change, 2
when something would, 1 on an error (a usage mistake included).`,
		Example: "  cutover plan -f release.yaml\n" +
			"  cutover plan -f release.yaml --detailed-exitcode || echo \"changes (2) or error (1)\"\n" +
			"  cutover plan -f release.yaml --inventory inventory.yaml --pin -o json",
		Args: cli.NoArgs,
	}
	file := cli.FileFlag(cmd, "release manifest (YAML)")
	invFile := cmd.Flags().String("inventory", "", "plan against this inventory (YAML; see cutover inventory import) instead of the live fleet")
	_ = cmd.MarkFlagFilename("inventory", "yaml", "yml")
	output := cli.OutputFlag(cmd, "text", "json")
	pin := cmd.Flags().Bool("pin", false, "pin images to the digests their tags have now, through the registry, before planning")
	insecure := cmd.Flags().Bool("insecure", false, "with --pin: plain HTTP to the registry")
	detailed := cmd.Flags().Bool("detailed-exitcode", false, "exit 0 when nothing changes, 2 when something does, 1 on error")
	nopts := cli.NATSFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		var fleet func() (plan.Input, error)
		if *invFile == "" {
			fleet = func() (plan.Input, error) {
				nc, js, err := nopts.Connect(ctx)
				if err != nil {
					return plan.Input{}, fmt.Errorf("plan against the live fleet: %w (or give --inventory FILE)", err)
				}
				defer nc.Close()
				nodes, err := planner.Fleet(ctx, js)
				if err != nil {
					return plan.Input{}, err
				}
				if len(nodes) == 0 {
					return plan.Input{}, fmt.Errorf("plan against the live fleet: no node-updater reports on this NATS (bucket %s is empty); start them, or give --inventory FILE", events.BucketNodes)
				}
				return plan.FromFleet(nodes), nil
			}
		}
		changed, err := planning.Write(ctx, cmd.OutOrStdout(), *file, *invFile, output.Value, *pin, *insecure, fleet)
		if err != nil {
			return err
		}
		if *detailed && changed > 0 {
			return exit.Error{Code: 2}
		}
		return nil
	}
	return cmd
}
