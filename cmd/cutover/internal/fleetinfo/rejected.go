package fleetinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
)

// RejectedRow is one refused message in cutover rejected -o json.
type RejectedRow struct {
	// At is when the rejection was stored (the stream's clock).
	At time.Time `json:"at"`
	events.EventRejected
	// Stored says whether the refused message is still in the stream.
	Stored bool `json:"stored"`
}

// Rejected lists the newest limit (0: all) messages the services refused,
// as text or json.
func Rejected(ctx context.Context, js jetstream.JetStream, w io.Writer, limit int, format string) error {
	rows, err := rejections(ctx, js, limit)
	if err != nil {
		return err
	}
	now := time.Now()
	return render.Rows(w, format, rows, "no rejected messages in the stream", "SEQ\tWHEN\tSUBJECT\tTYPE\tID\tBY\tSTORED\tFIELD\tREASON", func(r RejectedRow) string {
		return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", r.StreamSequence, render.Ago(r.At, now), r.Subject,
			orDash(r.RejectedType), orDash(events.Clip(r.EventID, 40)), r.Consumer, yesNo(r.Stored), orDash(r.Field), upgrades.OneLine(r.Reason, 160))
	})
}

// rejections reads the rejection events of the stream, oldest first, the
// newest limit of them (0: all).
func rejections(ctx context.Context, js jetstream.JetStream, limit int) ([]RejectedRow, error) {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.StreamName, err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectRejected}, DeliverPolicy: jetstream.DeliverAllPolicy}
	cons, err := js.OrderedConsumer(ctx, events.StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	pending := int(info.NumPending)
	rows := []RejectedRow{}
	for len(rows) < pending {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			e, err := events.Decode(msg.Headers(), msg.Data())
			if err != nil {
				pending-- // not a rejection cutover wrote: skip it
				continue
			}
			d, err := events.DataAs[events.EventRejected](e)
			if err != nil {
				pending--
				continue
			}
			r := RejectedRow{EventRejected: d}
			if md, err := msg.Metadata(); err == nil {
				r.At = md.Timestamp.UTC()
			}
			rows = append(rows, r)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		if n == 0 {
			break
		}
	}
	if limit > 0 && len(rows) > limit {
		rows = rows[len(rows)-limit:]
	}
	for i := range rows {
		_, err := st.GetMsg(ctx, rows[i].StreamSequence)
		rows[i].Stored = err == nil
	}
	return rows, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
