package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
)

func newWatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch [ID]",
		Short: "follow events live (one upgrade until it ends, or everything)",
		Long: `Follow the event stream. With an upgrade id, replay that upgrade from its
start and return when it ends: exit 0 if it completed, 1 otherwise. Without,
print every new event until interrupted.`,
		Example: "  cutover watch 019a7c3e\n  cutover watch",
		Args:    maxArgs(1, "one upgrade id"),
	}
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		return follow(ctx, js, append(args, "")[0], cmd.OutOrStdout(), nil)
	}
	return cmd
}

// follow prints events from the stream as they arrive. With an upgrade id it
// replays that upgrade from its start and returns when it ends (an
// exitError{1} unless it completed); without, it prints new events until ctx
// is done. onEvent, when set, sees every printed event.
func follow(ctx context.Context, js jetstream.JetStream, upgradeID string, w io.Writer, onEvent func(events.Event)) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if upgradeID != "" {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, events.StreamName, cfg)
	if err != nil {
		return fmt.Errorf("follow stream %s: %w", events.StreamName, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("follow stream %s: %w", events.StreamName, err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("follow stream %s: %w", events.StreamName, err)
		}
		e, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil {
			continue // the consumers reject it; the rejection event shows here
		}
		if upgradeID != "" && events.UpgradeOf(e) != upgradeID {
			continue
		}
		if e.Type() == events.TypeNodeHeartbeat {
			continue
		}
		fmt.Fprintln(w, render.Line(e))
		if onEvent != nil {
			onEvent(e)
		}
		if final, ok := render.Final(e); final && upgradeID != "" {
			if !ok {
				return exitError{1}
			}
			return nil
		}
	}
}
