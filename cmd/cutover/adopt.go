package main

import (
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/fleetinfo"
)

// newAdoptCmd is cutover adopt: a dry run of what a node-updater given the
// inventory would manage on this Docker engine.
func newAdoptCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adopt --inventory inventory.yaml [--node NAME]",
		Short: "dry run: which containers a node-updater with --inventory would manage on this engine",
		Long: `Show, without changing anything, how a node-updater started with
--inventory would see the local Docker engine (DOCKER_HOST and friends):
the containers the inventory places on the node that it would manage
(already labelled, or adopted by name though they carry no cutover label,
as kolla-ansible's do), those the inventory names but the engine lacks
(missing), and the containers on the engine the inventory does not name
(unknown: left alone). A container labelled for another node is never
adopted. The first replacement of an adopted container adds cutover's
labels; everything else is kept.

Run it on each host (or point DOCKER_HOST at it), then start that host's
node-updater with the same --inventory.`,
		Example: "  cutover adopt --inventory inventory.yaml --node control01\n" +
			"  DOCKER_HOST=ssh://compute07 cutover adopt --inventory inventory.yaml --node compute07 -o json",
		Args: cli.NoArgs,
	}
	invFile := cmd.Flags().String("inventory", "", "cutover inventory (YAML; see cutover inventory import)")
	_ = cmd.MarkFlagFilename("inventory", "yaml", "yml")
	node := cmd.Flags().String("node", "", "the node this engine is, as the inventory names it (default: this host's name)")
	output := cli.OutputFlag(cmd, "text", "json")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *invFile == "" {
			return usageErrorf("--inventory is required: the inventory that places containers on nodes")
		}
		return fleetinfo.Adopt(cmd.Context(), cmd.OutOrStdout(), *invFile, *node, output.String())
	}
	return cmd
}
