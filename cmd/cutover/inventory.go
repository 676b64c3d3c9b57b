package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
)

// newInventoryCmd is cutover inventory import|check.
func newInventoryCmd() *cobra.Command {
	return newGroupCmd("inventory", "import a kolla-ansible inventory, or check an inventory file",
		newInventoryImportCmd(), newInventoryCheckCmd())
}

func newInventoryImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "import --kolla FILE [--globals globals.yml] [--out inventory.yaml]",
		Short:   "convert a kolla-ansible INI inventory into a cutover inventory",
		Example: "  cutover inventory import --kolla /etc/kolla/multinode --globals /etc/kolla/globals.yml --out inventory.yaml",
		Args:    noArgs,
	}
	kollaFile := cmd.Flags().String("kolla", "", "kolla-ansible INI inventory (e.g. multinode)")
	_ = cmd.MarkFlagFilename("kolla")
	out := cmd.Flags().String("out", "", "write the cutover inventory to this file (default: standard output)")
	_ = cmd.MarkFlagFilename("out", "yaml", "yml")
	globals := cmd.Flags().String("globals", "", "kolla globals.yml: import only the services its enable_* flags enable; images follow its docker_registry, docker_namespace, kolla_base_distro, openstack_release/openstack_tag")
	_ = cmd.MarkFlagFilename("globals", "yml", "yaml")
	registry := cmd.Flags().String("registry", "", "image registry/namespace, overriding globals.yml (default quay.io/openstack.kolla)")
	tag := cmd.Flags().String("tag", "", "image tag the fleet runs now, overriding globals.yml (default <openstack_release>-<kolla_base_distro>-<version>)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *kollaFile == "" {
			return usageErrorf("--kolla is required: the kolla-ansible inventory to import")
		}
		opts := kolla.Options{Registry: *registry, Tag: *tag}
		if *globals != "" {
			g, err := kolla.LoadGlobals(*globals)
			if err != nil {
				return err
			}
			opts.Globals, opts.GlobalsFile = g, *globals
		}
		return importKolla(*kollaFile, *out, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

func newInventoryCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "check FILE",
		Short:   "validate an inventory (file, line and field of every problem)",
		Example: "  cutover inventory check inventory.yaml",
		Args:    exactArgs(1, "one inventory file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			inv, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s, %s, %s: valid\n", args[0], render.Plural(len(inv.Nodes), "node"), render.Plural(len(inv.Roles), "role"), render.Plural(len(inv.Services), "service"))
			return nil
		},
	}
}

func importKolla(in, out string, opts kolla.Options, stdout, stderr io.Writer) error {
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
