package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/services/planner/inventory"
	"github.com/cutover-dev/cutover/services/planner/inventory/kolla"
)

// newInventoryCmd is cutover inventory import|check.
func newInventoryCmd() *cobra.Command {
	return newGroupCmd("inventory", "import a kolla-ansible inventory, or check an inventory file",
		newInventoryImportCmd(), newInventoryCheckCmd())
}

func newInventoryImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "import --kolla FILE [--out inventory.yaml]",
		Short:   "convert a kolla-ansible INI inventory into a cutover inventory",
		Example: "  cutover inventory import --kolla multinode --out inventory.yaml",
		Args:    noArgs,
	}
	kollaFile := cmd.Flags().String("kolla", "", "kolla-ansible INI inventory (e.g. multinode)")
	_ = cmd.MarkFlagFilename("kolla")
	out := cmd.Flags().String("out", "", "write the cutover inventory to this file (default: standard output)")
	_ = cmd.MarkFlagFilename("out", "yaml", "yml")
	registry := cmd.Flags().String("registry", "", "image registry/namespace (default quay.io/openstack.kolla)")
	tag := cmd.Flags().String("tag", "", "image tag the fleet runs now (default 2024.1-ubuntu-jammy)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *kollaFile == "" {
			return usageErrorf("--kolla is required: the kolla-ansible inventory to import")
		}
		return importKolla(*kollaFile, *out, kolla.Options{Registry: *registry, Tag: *tag}, cmd.OutOrStdout(), cmd.ErrOrStderr())
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
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d nodes, %d roles, %d services: valid\n", args[0], len(inv.Nodes), len(inv.Roles), len(inv.Services))
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
	header := fmt.Sprintf("# cutover inventory imported from kolla-ansible inventory %s.\n# Review images, databases (version) and max_unavailable before planning.\n", in)
	raw = append([]byte(header), raw...)
	if len(rep.EmptyGroups) > 0 {
		fmt.Fprintf(stderr, "skipped service groups with no hosts: %s\n", strings.Join(rep.EmptyGroups, ", "))
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
	fmt.Fprintf(stderr, "wrote %s: %d nodes, %d roles, %d services\n", out, len(inv.Nodes), len(inv.Roles), len(inv.Services))
	return nil
}
