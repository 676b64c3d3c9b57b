package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func newDemoExpandContractCmd() *cobra.Command {
	o := scenario.ExpandContractOptions{Version: version}
	cmd := &cobra.Command{
		Use:     "demo-expand-contract [--rate N] [--duration D]",
		Short:   "v1 and v2 share one SQLite database through expand -> roll -> contract under load",
		Example: "  cutover demo-expand-contract --rate 100 --duration 25s",
		Args:    cli.NoArgs,
	}
	cmd.Flags().IntVar(&o.Rate, "rate", 100, "writes per second sent through HAProxy (each read back and an earlier one re-read: 3 requests)")
	cmd.Flags().DurationVar(&o.MinLoad, "duration", 25*time.Second, "least time the load runs (it also runs until the upgrade ends)")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "show the services' logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return scenario.DemoExpandContract(cmd.Context(), cmd.OutOrStdout(), o)
	}
	return cmd
}
