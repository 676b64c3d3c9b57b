package main

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/fleetinfo"
)

func newRejectedCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rejected",
		Short: "messages the services refused: which, where, the field and why",
		Long: `List the messages a service refused (dev.cutover.event.rejected), newest
last: the refused message's stream sequence, subject, event type and id when
they could be read, the field to blame and the reason. Each refused message
was terminated: no service reads it again, a restart included, and it is
reported once however many services read it. STORED says whether the
message itself is still in the stream (it ages out with the stream's
max age).`,
		Example: "  cutover rejected\n  cutover rejected --limit 5\n  cutover rejected -o json | jq '.[] | select(.field == \"specversion\")'",
		Args:    cli.NoArgs,
	}
	output := cli.OutputFlag(cmd, "text", "json")
	limit := cmd.Flags().Int("limit", 50, "show the newest N rejections (0: all)")
	nopts := cli.NATSFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *limit < 0 {
			return usageErrorf("--limit %d: want 0 (all) or more", *limit)
		}
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			return fleetinfo.Rejected(ctx, js, cmd.OutOrStdout(), *limit, output.Value)
		})
	}
	return cmd
}
