package upgrades

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
)

// Events reads an upgrade's events from the stream, oldest first.
// The stream is read to its end as it was when the read began.
func Events(ctx context.Context, js jetstream.JetStream, id string) ([]events.Event, error) {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.StreamName, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	var out []events.Event
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		n := 0
		var seq uint64
		for msg := range batch.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				seq = md.Sequence.Stream
			}
			e, err := events.Decode(msg.Headers(), msg.Data())
			if err != nil || events.UpgradeOf(e) != id || e.Type() == events.TypeNodeHeartbeat {
				continue
			}
			out = append(out, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		if seq >= last || n == 0 {
			return out, nil
		}
	}
}

// Print writes events as text lines or, for json, as a JSON array of
// CloudEvents.
func Print(w io.Writer, evs []events.Event, format string) error {
	if format == "json" {
		if evs == nil {
			evs = []events.Event{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(evs)
	}
	lines := render.NewLines()
	lines.FitEvents(evs...)
	for _, e := range evs {
		fmt.Fprintln(w, lines.Line(e))
	}
	return nil
}

// History reads the events of the upgrade arg names from the stream,
// oldest first.
func History(ctx context.Context, js jetstream.JetStream, arg string) ([]events.Event, error) {
	id, err := Resolve(ctx, js, arg)
	if err != nil {
		return nil, err
	}
	return Events(ctx, js, id)
}
