package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/inventory"
)

// newNATSConfigCmd is cutover nats-config: the least-privilege authorization
// of a fleet and one nkey seed per identity.
func newNATSConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nats-config --out DIR (--nodes a,b | --inventory FILE) [--lb-agents x] [--monitors m] [--evacuators e]",
		Short: "write a nats-server authorization with one least-privilege identity per service and node",
		Long: `Write DIR/authorization.conf, a nats-server authorization block with one nkey
user per identity (planner, migrator, auditor, cli, node-updater-<node> per node,
each lb-agent, monitor-<name>, evacuator-<name>), each allowed only the
subjects its role needs (docs/events.md, "Who may publish what"), and
DIR/<identity>.nk, each identity's nkey seed (mode 0600). Seeds already in DIR
are kept: run it again when nodes are added. Include authorization.conf from
the server's configuration; give each binary its seed with --nats-nkey.`,
		Example: "  cutover nats-config --out /etc/cutover/nats --inventory inventory.yaml --lb-agents lb-agent\n" +
			"  cutover nats-config --out ./creds --nodes compute01,compute02 --monitors prober",
		Args: cli.NoArgs,
	}
	out := cmd.Flags().String("out", "", "directory for authorization.conf and the seeds (created mode 0700)")
	_ = cmd.MarkFlagDirname("out")
	nodes := cmd.Flags().String("nodes", "", "comma-separated node names (one node-updater identity each)")
	invFile := cmd.Flags().String("inventory", "", "take the node names from this inventory")
	_ = cmd.MarkFlagFilename("inventory", "yaml", "yml")
	lbAgents := cmd.Flags().String("lb-agents", "", "comma-separated lb-agent names (their --name, default lb-agent)")
	monitors := cmd.Flags().String("monitors", "", "comma-separated health monitor names (identities monitor-<name>; may publish signals only)")
	evacuators := cmd.Flags().String("evacuators", "", "comma-separated evacuator names (identities evacuator-<name>; answer drain requests)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *out == "" {
			return usageErrorf("--out is required: the directory to write authorization.conf and the seeds to")
		}
		if *nodes == "" && *invFile == "" {
			return usageErrorf("--nodes or --inventory is required: every node of the fleet gets a node-updater identity, and one left out can no longer connect")
		}
		fleet := natsauth.Fleet{Nodes: splitNames(*nodes), LBAgents: splitNames(*lbAgents), Monitors: splitNames(*monitors), Evacuators: splitNames(*evacuators)}
		if *invFile != "" {
			inv, err := inventory.Load(*invFile)
			if err != nil {
				return err
			}
			for _, n := range slices.Sorted(maps.Keys(inv.Nodes)) {
				if !slices.Contains(fleet.Nodes, n) {
					fleet.Nodes = append(fleet.Nodes, n)
				}
			}
		}
		ids, err := natsauth.Write(*out, fleet)
		if err != nil {
			return err
		}
		printIdentities(cmd.OutOrStdout(), *out, ids)
		if dropped := droppedSeeds(*out, ids); len(dropped) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s has seeds of identities this authorization leaves out, which can no longer connect once the servers load it: %s; give every node (--nodes or --inventory), lb-agent, monitor and evacuator to keep them\n",
				*out, strings.Join(dropped, ", "))
		}
		return nil
	}
	return cmd
}

// droppedSeeds names the identities with a seed in dir that ids leaves
// out: a fleet given without some of its nodes.
func droppedSeeds(dir string, ids []natsauth.Identity) []string {
	seeds, _ := filepath.Glob(natsauth.SeedFile(dir, "*"))
	var dropped []string
	for _, f := range seeds {
		name := strings.TrimSuffix(filepath.Base(f), ".nk")
		if !slices.ContainsFunc(ids, func(id natsauth.Identity) bool { return id.Name == name }) {
			dropped = append(dropped, name)
		}
	}
	return dropped
}

func printIdentities(w io.Writer, dir string, ids []natsauth.Identity) {
	fmt.Fprintf(w, "wrote %s/%s with %d identities:\n", dir, natsauth.AuthorizationFile, len(ids))
	for _, id := range ids {
		fmt.Fprintf(w, "  %-28s %-13s seed %s\n", id.Name, id.Role, natsauth.SeedFile(dir, id.Name))
	}
	fmt.Fprintln(w, "include the authorization from nats-server.conf; give each binary its seed with --nats-nkey (keep the seeds 0600)")
}

func splitNames(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
