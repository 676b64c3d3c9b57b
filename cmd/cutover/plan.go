package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
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
		Args: noArgs,
	}
	file := fileFlag(cmd, "release manifest (YAML)")
	invFile := cmd.Flags().String("inventory", "", "plan against this inventory (YAML; see cutover inventory import) instead of the live fleet")
	_ = cmd.MarkFlagFilename("inventory", "yaml", "yml")
	output := outputFlag(cmd, "text", "json")
	pin := cmd.Flags().Bool("pin", false, "pin images to the digests their tags have now, through the registry, before planning")
	insecure := cmd.Flags().Bool("insecure", false, "with --pin: plain HTTP to the registry")
	detailed := cmd.Flags().Bool("detailed-exitcode", false, "exit 0 when nothing changes, 2 when something does, 1 on error")
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		var fleet func() (plan.Input, error)
		if *invFile == "" {
			fleet = func() (plan.Input, error) {
				nc, js, err := nopts.connect(ctx)
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
		changed, err := writePlan(ctx, cmd.OutOrStdout(), *file, *invFile, output.value, *pin, *insecure, fleet)
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

// writePlan prints the plan of a release against an inventory file, or
// against what fleet returns when invFile is empty, and returns how many
// containers change.
func writePlan(ctx context.Context, w io.Writer, file, invFile, output string, pin, insecure bool, fleet func() (plan.Input, error)) (int, error) {
	if file == "" {
		return 0, usageErrorf("-f is required, e.g. cutover plan -f release.yaml [--inventory inventory.yaml]")
	}
	if invFile == "" && fleet == nil {
		return 0, usageErrorf("--inventory is required here")
	}
	if output != "text" && output != "json" {
		return 0, fmt.Errorf("-o %q: use text or json", output)
	}
	rel, err := loadRelease(ctx, file, pin, insecure)
	if err != nil {
		return 0, err
	}
	var in plan.Input
	if invFile != "" {
		inv, err := inventory.Load(invFile)
		if err != nil {
			return 0, err
		}
		in = plan.FromInventory(inv)
	} else if in, err = fleet(); err != nil {
		return 0, err
	}
	p, err := plan.Build(plan.FromManifest(rel), in)
	if err != nil {
		return 0, err
	}
	if output == "json" {
		return p.Changed, p.JSON(w)
	}
	return p.Changed, p.Text(w)
}
