package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/planning"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
)

// newInventoryCmd is cutover inventory import|check.
func newInventoryCmd() *cobra.Command {
	return cli.GroupCmd("inventory", "import a kolla-ansible inventory, or check an inventory file",
		newInventoryImportCmd(), newInventoryCheckCmd())
}

func newInventoryImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "import --kolla FILE [--globals globals.yml] [--out inventory.yaml]",
		Short:   "convert a kolla-ansible INI inventory into a cutover inventory",
		Example: "  cutover inventory import --kolla /etc/kolla/multinode --globals /etc/kolla/globals.yml --out inventory.yaml",
		Args:    cli.NoArgs,
	}
	kollaFile := cmd.Flags().String("kolla", "", "kolla-ansible INI inventory (e.g. multinode)")
	_ = cmd.MarkFlagFilename("kolla")
	out := cmd.Flags().String("out", "", "write the cutover inventory to this file (default: standard output)")
	_ = cmd.MarkFlagFilename("out", "yaml", "yml")
	globals := cmd.Flags().String("globals", "", "kolla globals.yml: import only the services its enable_* flags enable; images follow its docker_registry, docker_namespace, kolla_base_distro, openstack_release/openstack_tag and any <project>_tag, <container>_tag, <container>_image or <container>_image_full it pins")
	_ = cmd.MarkFlagFilename("globals", "yml", "yaml")
	registry := cmd.Flags().String("registry", "", "image registry/namespace (docker_image_url), overriding globals.yml (default quay.io/openstack.kolla); images pinned with <container>_image keep theirs")
	tag := cmd.Flags().String("tag", "", "openstack_tag the fleet runs now, overriding globals.yml (default <openstack_release>-<kolla_base_distro>-<version>); tags pinned per project or container keep theirs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *kollaFile == "" {
			return usageErrorf("--kolla is required: the kolla-ansible inventory to import")
		}
		opts := kolla.Options{Registry: *registry, Tag: *tag}
		if *globals != "" {
			g, lines, err := kolla.ReadGlobals(*globals)
			if err != nil {
				return err
			}
			opts.Globals, opts.GlobalsLines, opts.GlobalsFile = g, lines, *globals
		}
		return planning.ImportKolla(*kollaFile, *out, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

func newInventoryCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "check FILE",
		Short:   "validate an inventory (file, line and field of every problem)",
		Example: "  cutover inventory check inventory.yaml",
		Args:    cli.ExactArgs(1, "one inventory file"),
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
