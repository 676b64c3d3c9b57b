package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func newDemoOpenStackCmd() *cobra.Command {
	var o scenario.OpenStackOptions
	cmd := cli.RunCmd("demo-openstack [--mariadb URL] [--rate N] [--duration D]",
		"an OpenStack-shaped service on MariaDB: db-sync expand/migrate/contract under load, then a failing db-sync restored",
		"  make mariadb && cutover demo-openstack --mariadb mysql://cutover:cutover@127.0.0.1:3306/cutover",
		func(ctx context.Context, w io.Writer) error { return scenario.DemoOpenStack(ctx, w, o) })
	def := cli.EnvOr("CUTOVER_TEST_MARIADB", "mysql://cutover:cutover@127.0.0.1:3306/cutover")
	cmd.Flags().StringVar(&o.MariaDB, "mariadb", def, "the MariaDB server (make mariadb starts one); the demo creates and drops a database of its own on it")
	cmd.Flags().IntVar(&o.Rate, "rate", 50, "writes per second through HAProxy (each read back, and an earlier one re-read)")
	cmd.Flags().DurationVar(&o.MinLoad, "duration", 20*time.Second, "least time the load of the v1 -> v2 upgrade runs")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "show the services' logs")
	return cmd
}
