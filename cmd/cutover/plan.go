package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/services/planner/inventory"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// newPlanCmd prints the plan for a release against an inventory file: a
// dry run that changes nothing and needs no NATS.
func newPlanCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan -f release.yaml --inventory inventory.yaml",
		Short: "dry run: every container's change and reason, phases and waves",
		Example: "  cutover plan -f release.yaml --inventory inventory.yaml\n" +
			"  cutover plan -f release.yaml --inventory inventory.yaml --pin -o json",
		Args: noArgs,
	}
	file := fileFlag(cmd, "release manifest (YAML)")
	invFile := cmd.Flags().String("inventory", "", "inventory (YAML; see cutover inventory import for kolla)")
	_ = cmd.MarkFlagFilename("inventory", "yaml", "yml")
	output := outputFlag(cmd, "text", "json")
	pin := cmd.Flags().Bool("pin", false, "pin images to the digests their tags have now, through the registry, before planning")
	insecure := cmd.Flags().Bool("insecure", false, "with --pin: plain HTTP to the registry")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return writePlan(cmd.Context(), cmd.OutOrStdout(), *file, *invFile, output.value, *pin, *insecure)
	}
	return cmd
}

func writePlan(ctx context.Context, w io.Writer, file, invFile, output string, pin, insecure bool) error {
	if file == "" || invFile == "" {
		return errors.New("-f and --inventory are required, e.g. cutover plan -f release.yaml --inventory inventory.yaml")
	}
	if output != "text" && output != "json" {
		return fmt.Errorf("-o %q: use text or json", output)
	}
	rel, err := loadRelease(ctx, file, pin, insecure)
	if err != nil {
		return err
	}
	inv, err := inventory.Load(invFile)
	if err != nil {
		return err
	}
	p, err := plan.Build(plan.FromManifest(rel), plan.FromInventory(inv))
	if err != nil {
		return err
	}
	if output == "json" {
		return p.JSON(w)
	}
	return p.Text(w)
}
