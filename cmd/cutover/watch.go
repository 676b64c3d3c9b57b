package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
)

func runWatch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("CUTOVER_NATS", defaultNATS), "NATS server URL (env CUTOVER_NATS)")
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) > 1 {
		return errors.New("give at most one upgrade id")
	}
	nc, js, err := events.Connect(ctx, *natsURL, "cutover-cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	return follow(ctx, js, append(ids, "")[0], os.Stdout, nil)
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
