package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
	"github.com/cutover-dev/cutover/services/planner/manifest"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

func newApplyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply -f release.yaml [--watch]",
		Short: "request an upgrade; prints the upgrade id",
		Long: `Request an upgrade to the release in a manifest. The planner plans it against
the live fleet and runs it wave by wave; apply prints the upgrade id, or with
--watch follows the upgrade until it ends.`,
		Example: "  cutover apply -f release.yaml\n  cutover apply -f release.yaml --watch",
		Args:    cli.NoArgs,
	}
	file := cli.FileFlag(cmd, "release manifest (YAML)")
	watch := cmd.Flags().Bool("watch", false, "follow the upgrade until it ends; exit 0 only if it completed")
	nopts := cli.NATSFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *file == "" {
			return usageErrorf("-f is required: the release manifest to apply, e.g. cutover apply -f release.yaml")
		}
		ctx := cmd.Context()
		req, err := manifest.Load(*file)
		if err != nil {
			return err
		}
		req.RequestedBy = "cutover apply"
		nc, js, err := nopts.Connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		if err := knownServices(ctx, js, req, *file, cmd.ErrOrStderr()); err != nil {
			return err
		}
		e, err := events.New(events.Source("cli", ""), req)
		if err != nil {
			return err
		}
		if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), e.ID())
		if !*watch {
			return nil
		}
		return upgrades.Follow(ctx, js, e.ID(), cmd.OutOrStdout(), nil)
	}
	return cmd
}

// knownServices refuses a release naming a service no node-updater reports
// (a typo such as nova_api for nova-api), which the planner would only
// reject after the request is stored, with the name it may have meant. With
// no fleet to compare with (no node-updater yet, or the nodes bucket
// unreadable) the request goes to the planner as before.
func knownServices(ctx context.Context, js jetstream.JetStream, req events.UpgradeRequested, file string, stderr io.Writer) error {
	fleet, err := planner.Fleet(ctx, js)
	if err != nil {
		fmt.Fprintf(stderr, "cutover: warning: the release's service names are not checked against the fleet: %v\n", err)
		return nil
	}
	if len(fleet) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, n := range fleet {
		for _, c := range n.Containers {
			seen[c.Service] = true
		}
	}
	var missing []string
	for _, s := range slices.Sorted(maps.Keys(req.Release.Services)) {
		if !seen[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s: no node runs service %s%s; fix the name under services: (the services nodes run are the values of their containers' %s label; cutover nodes lists them)",
		file, strings.Join(missing, ", "), plan.UnknownServices(missing, plan.FromFleet(fleet).Nodes), events.LabelService)
}
