package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cutover-dev/cutover/services/planner/inventory"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// runPlan prints the plan for a release against an inventory file: a dry
// run that changes nothing and needs no NATS.
func runPlan(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	file := fs.String("f", "", "release manifest (YAML)")
	invFile := fs.String("inventory", "", "inventory (YAML; see cutover inventory import for kolla)")
	output := fs.String("o", "text", "output format: text or json")
	pin := fs.Bool("pin", false, "pin images to the digests their tags have now, through the registry, before planning")
	insecure := fs.Bool("insecure", false, "with --pin: plain HTTP to the registry")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	return writePlan(ctx, os.Stdout, *file, *invFile, *output, *pin, *insecure)
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
