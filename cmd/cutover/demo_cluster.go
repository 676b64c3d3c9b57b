package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func newDemoClusterCmd() *cobra.Command {
	var bin string
	cmd := &cobra.Command{
		Use:   "demo-cluster [--bin DIR]",
		Short: "a 3-server NATS cluster and every service as its own process; one server and the leading planner killed mid-upgrade",
		Long: `Run the distributed mode on one machine: three nats-server processes in a
JetStream cluster (replicas 3), two planners (one holds the lease), the
migrator, the auditor and a node-updater per demo node, each a process on its
own generated NATS identity. Upgrade three containers on the local Docker
engine; once the first wave completed, kill the nats-server leading the stream
and the planner holding the lease, and show the upgrade finishing. Everything
it made is removed at the end.`,
		Example: "  make demo-cluster\n  cutover demo-cluster --bin ./bin",
		Args:    cli.NoArgs,
	}
	cmd.Flags().StringVar(&bin, "bin", "", "`directory` of nats-server, planner, migrator, auditor and node-updater (default: this binary's directory; make build nats-server fills bin/)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if bin == "" {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			bin = filepath.Dir(exe)
		}
		return scenario.DemoCluster(cmd.Context(), cmd.OutOrStdout(), scenario.DemoClusterOptions{BinDir: bin})
	}
	return cmd
}
