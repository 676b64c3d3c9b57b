package upgrades

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// Follow prints events from the stream as they arrive. With an upgrade id it
// replays that upgrade from its start and returns when it ends (an
// exit.Error{Code: 1} unless it completed); without, it prints new events until ctx
// is done. onEvent, when set, sees every printed event.
func Follow(ctx context.Context, js jetstream.JetStream, upgradeID string, w io.Writer, onEvent func(events.Event)) error {
	return FollowAs(ctx, js, upgradeID, w, "text", onEvent)
}

// FollowAs is Follow printing each event as a text line or, for json, as
// one CloudEvent per line.
func FollowAs(ctx context.Context, js jetstream.JetStream, upgradeID string, w io.Writer, format string, onEvent func(events.Event)) error {
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
	lines := render.NewLines(nodeNames(ctx, js, upgradeID)...)
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
		if format == "json" {
			raw, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("encode event %s: %w", e.ID(), err)
			}
			fmt.Fprintf(w, "%s\n", raw)
		} else {
			fmt.Fprintln(w, lines.Line(e))
		}
		if onEvent != nil {
			onEvent(e)
		}
		if final, ok := render.Final(e); final && upgradeID != "" {
			if movedOn(ctx, js, upgradeID, e) {
				continue // a pause or rollback the replay passed: the upgrade went on since
			}
			if !ok {
				return exit.Error{Code: 1}
			}
			return nil
		}
	}
}

// nodeNames returns the nodes whose events a watch will show, so their
// column is wide enough from the first line: the nodes of the upgrade's
// plan, or, when following every upgrade, the node-updaters alive now.
// It is a best effort: an upgrade not planned yet names none (its plan
// event widens the column when it comes).
func nodeNames(ctx context.Context, js jetstream.JetStream, upgradeID string) []string {
	var out []string
	if upgradeID != "" {
		u, err := planner.LoadUpgrade(ctx, js, upgradeID)
		if err != nil {
			return nil
		}
		for _, np := range u.Nodes {
			out = append(out, np.Node)
		}
		return out
	}
	kv, err := js.KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return nil
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil
	}
	for k := range keys.Keys() {
		out = append(out, k)
	}
	return out
}

// movedOn reports whether an upgrade went on after the final-looking event
// e (a pause that was resumed or promoted, a rollback that was retried, a
// completion rolled back later): its phase now is not the one e announced.
func movedOn(ctx context.Context, js jetstream.JetStream, id string, e events.Event) bool {
	u, err := planner.LoadUpgrade(ctx, js, id)
	if err != nil {
		return false
	}
	switch e.Type() {
	case events.TypeUpgradeCompleted:
		return u.Phase != planner.PhaseCompleted
	case events.TypeUpgradeAborted:
		return u.Phase != planner.PhaseAborted
	case events.TypeUpgradeFailed:
		return u.Phase != planner.PhaseFailed && u.Phase != planner.PhaseRolledBack
	case events.TypeUpgradePaused:
		d, err := events.DataAs[events.UpgradePaused](e)
		return err == nil && (u.Phase != planner.PhasePaused || u.Reason != d.Reason)
	}
	return false
}
