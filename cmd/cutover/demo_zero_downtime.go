package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func newDemoZeroDowntimeCmd() *cobra.Command {
	o := scenario.ZeroDowntimeOptions{Version: version}
	cmd := cli.RunCmd("demo-zero-downtime [--rate N] [--duration D]",
		"roll 3 replicas behind a real HAProxy under load, with drain and without",
		"  cutover demo-zero-downtime --rate 250 --haproxy-retries",
		func(ctx context.Context, w io.Writer) error { return scenario.DemoZeroDowntime(ctx, w, o) })
	cmd.Flags().IntVar(&o.Rate, "rate", 250, "requests per second sent through HAProxy")
	cmd.Flags().DurationVar(&o.MinLoad, "duration", 25*time.Second, "least time the load runs in each run (it also runs until the upgrade ends)")
	cmd.Flags().BoolVar(&o.Baseline, "baseline", true, "also measure the no-drain stop-first baseline")
	cmd.Flags().BoolVar(&o.Retries, "haproxy-retries", false, "turn on HAProxy's retries and redispatch in both runs (off by default, so HAProxy does not hide\nrequests sent to a stopped replica by retrying them elsewhere after a stall)")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "show the services' logs")
	return cmd
}
