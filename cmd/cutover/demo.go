package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func newDemoCmd() *cobra.Command {
	o := scenario.DemoOptions{Version: version}
	cmd := cli.RunCmd("demo [--keep]",
		"upgrade three real containers from v1 to v2 on the local Docker engine (simulated without Docker)",
		"  cutover demo",
		func(ctx context.Context, w io.Writer) error { return scenario.Demo(ctx, w, o) })
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "leave the demo containers, volumes and images in place")
	cmd.Flags().StringVar(&o.Listen, "nats-listen", "127.0.0.1:0", "address of the demo's embedded NATS server (port 0: any free port)")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "show the services' logs")
	return cmd
}
