package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/fleetinfo"
)

func newNodesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "the node-updaters: alive, version, containers, images, last heard from",
		Long: `List every node-updater that reports to this NATS (the cutover-nodes
bucket): whether it is alive (refreshed its inventory in the last 25s), its
version and runtime, the containers it owns and the images they run, and
when it was last heard from (its last event). A node-updater silent for 30s
drops out of the bucket: the planner counts its node as lost.`,
		Example: "  cutover nodes\n  cutover nodes -o json | jq '.[] | select(.alive | not) | .node'",
		Args:    cli.NoArgs,
	}
	output := cli.OutputFlag(cmd, "text", "json")
	nopts := cli.NATSFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			return fleetinfo.Nodes(ctx, js, cmd.OutOrStdout(), output.Value)
		})
	}
	return cmd
}

func newLocksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "locks [--release SCOPE --force]",
		Short: "the scope locks: which upgrade holds each and since when; release a stale one",
		Long: `One upgrade runs per scope at a time: the planner holds the scope's lock
from the request until the upgrade ends (a paused upgrade keeps it). List
the locks, the upgrade holding each, its phase and the lock's age.

--release SCOPE --force deletes a stale lock: one whose upgrade finished or
is unknown to the planner. A live lock (its upgrade running, paused or
rolling back) is never released: finish that upgrade first (cutover abort,
cutover rollback).`,
		Example: "  cutover locks\n  cutover locks --release default --force",
		Args:    cli.NoArgs,
	}
	output := cli.OutputFlag(cmd, "text", "json")
	release := cmd.Flags().String("release", "", "delete the stale lock of this scope (needs --force)")
	force := cmd.Flags().Bool("force", false, "confirm --release")
	nopts := cli.NATSFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *release != "" && !*force {
			return usageErrorf("--release %s deletes a lock: add --force to confirm", *release)
		}
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			return fleetinfo.Locks(ctx, js, cmd.OutOrStdout(), *release, output.Value)
		})
	}
	return cmd
}
