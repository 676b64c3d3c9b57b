package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func newDemoExpandContractCmd() *cobra.Command {
	o := scenario.ExpandContractOptions{Version: version}
	cmd := cli.RunCmd("demo-expand-contract [--rate N] [--duration D]",
		"v1 and v2 share one SQLite database through expand -> roll -> contract under load",
		"  cutover demo-expand-contract --rate 100 --duration 25s",
		func(ctx context.Context, w io.Writer) error { return scenario.DemoExpandContract(ctx, w, o) })
	cmd.Flags().IntVar(&o.Rate, "rate", 100, "writes per second sent through HAProxy (each read back and an earlier one re-read: 3 requests)")
	cmd.Flags().DurationVar(&o.MinLoad, "duration", 25*time.Second, "least time the load runs (it also runs until the upgrade ends)")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "show the services' logs")
	return cmd
}
