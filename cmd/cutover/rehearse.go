package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/rehearsal"
)

func newRehearseCmd() *cobra.Command {
	var o rehearsal.Options
	cmd := cli.RunCmd("rehearse (-f release.yaml --inventory inventory.yaml | --nodes N)",
		"run an upgrade on a SIMULATED fleet: duration, events/s, most instances down at once",
		"  cutover rehearse --nodes 200 --services 10 --failure-rate 0.01\n  cutover rehearse -f release.yaml --inventory inventory.yaml --latency pull=2s-10s,health=1s",
		func(ctx context.Context, w io.Writer) error { return rehearsal.Rehearse(ctx, w, o) })
	cmd.Flags().StringVarP(&o.File, "file", "f", "", "release manifest (YAML); with --inventory")
	cmd.Flags().StringVar(&o.InventoryFile, "inventory", "", "inventory (YAML): the simulated fleet and its rollout settings")
	cmd.Flags().IntVar(&o.Nodes, "nodes", 0, "generate a fleet of this many nodes (instead of -f/--inventory)")
	cmd.Flags().IntVar(&o.Services, "services", 20, "with --nodes: services per node, one container each")
	cmd.Flags().StringVar(&o.MaxUnavailable, "max-unavailable", "10%", "with --nodes: every service's max_unavailable (a count or a percent)")
	cmd.Flags().Float64Var(&o.FailureRate, "failure-rate", 0, "probability (0-1) that one container replacement fails, split across pull, start and health")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "random seed: the same seed gives the same latencies and failures")
	cmd.Flags().StringVar(&o.Latency, "latency", "", "step latencies, e.g. pull=2s-10s,stop=normal:1s,200ms,start=100ms,health=1s-3s (default: none)")
	cmd.Flags().StringVar(&o.FailureAction, "failure-action", "rollback", "what the planner does when a wave fails: rollback, pause or continue")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Minute, "give up after this long")
	cmd.Flags().IntVar(&o.Conns, "conns", 0, "NATS connections the simulated node-updaters share (default: one per 250 nodes, at most 8)")
	cmd.Flags().IntVar(&o.MaxPayload, "max-payload", 0, "NATS max_payload in bytes (default: the server's 1 MB, as in production)")
	cmd.Flags().BoolVar(&o.Quiet, "quiet", false, "print the report only, not the upgrade's progress events")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "show the services' logs")
	return cmd
}
