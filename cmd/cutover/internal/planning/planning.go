// Package planning is what cutover plan and cutover inventory import do:
// a release planned against an inventory or the live fleet, and a
// kolla-ansible inventory converted into a cutover one.
package planning

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/release"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// Write prints the plan of a release against an inventory file, or
// against what fleet returns when invFile is empty, and returns how many
// containers change.
func Write(ctx context.Context, w io.Writer, file, invFile, output string, pin, insecure bool, fleet func() (plan.Input, error)) (int, error) {
	if file == "" {
		return 0, exit.Usagef("-f is required, e.g. cutover plan -f release.yaml [--inventory inventory.yaml]")
	}
	if invFile == "" && fleet == nil {
		return 0, exit.Usagef("--inventory is required here")
	}
	if output != "text" && output != "json" {
		return 0, fmt.Errorf("-o %q: use text or json", output)
	}
	rel, err := release.Load(ctx, file, pin, insecure)
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

// ImportKolla converts the kolla-ansible inventory in into a cutover
// inventory written to out (stdout when empty), saying on stderr what it
// left out.
func ImportKolla(in, out string, opts kolla.Options, stdout, stderr io.Writer) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open kolla inventory: %w", err)
	}
	defer f.Close()
	parsed, err := kolla.Parse(in, f)
	if err != nil {
		return err
	}
	inv, rep, err := kolla.Convert(parsed, opts)
	if err != nil {
		return err
	}
	raw, err := inventory.Marshal(inv)
	if err != nil {
		return err
	}
	header := fmt.Sprintf("# cutover inventory imported from kolla-ansible inventory %s\n# with the service table of kolla-ansible %s.\n# Review images, databases (version) and max_unavailable before planning.\n", in, rep.Release)
	raw = append([]byte(header), raw...)
	if opts.Globals == nil {
		fmt.Fprintf(stderr, "no --globals: imported every service the inventory places (%d); pass --globals /etc/kolla/globals.yml to keep only the enabled ones\n", len(inv.Services))
	}
	if len(rep.Disabled) > 0 {
		fmt.Fprintf(stderr, "skipped services globals.yml disables: %s\n", strings.Join(rep.Disabled, ", "))
	}
	if len(rep.NoGroup) > 0 {
		fmt.Fprintf(stderr, "enabled services whose group the inventory lacks (not imported): %s\n", strings.Join(rep.NoGroup, ", "))
	}
	if len(rep.EmptyGroups) > 0 {
		fmt.Fprintf(stderr, "skipped services whose group has no hosts: %s\n", strings.Join(rep.EmptyGroups, ", "))
	}
	if len(rep.UnknownGroups) > 0 {
		fmt.Fprintf(stderr, "groups the kolla-ansible %s service table does not know (not imported; add them to the inventory by hand): %s\n", rep.Release, strings.Join(rep.UnknownGroups, ", "))
	}
	if len(rep.Shadowed) > 0 {
		fmt.Fprintf(stderr, "inventory group vars that kolla-ansible's group_vars/all overrides (ignored, as kolla-ansible ignores them; set them in globals.yml or on the host's line): %s\n", strings.Join(rep.Shadowed, ", "))
	}
	if len(rep.Pinned) > 0 {
		fmt.Fprintf(stderr, "containers pinned to another image than their service's (under nodes.<host>.images): %s\n", strings.Join(rep.Pinned, ", "))
	}
	if len(rep.IdleHosts) > 0 {
		fmt.Fprintf(stderr, "skipped hosts that run no service: %s\n", strings.Join(rep.IdleHosts, ", "))
	}
	if out == "" {
		_, err = stdout.Write(raw)
		return err
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return fmt.Errorf("write inventory %s: %w", out, err)
	}
	fmt.Fprintf(stderr, "wrote %s: %s, %s, %s\n", out, render.Plural(len(inv.Nodes), "node"), render.Plural(len(inv.Roles), "role"), render.Plural(len(inv.Services), "service"))
	return nil
}
