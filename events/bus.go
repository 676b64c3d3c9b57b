package events

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// publishRetryWait is the pause between two publishes nobody answered.
const publishRetryWait = 250 * time.Millisecond

// Publisher publishes events on JetStream.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish encodes e and publishes it, waiting for the stream's acknowledgement.
// A republished id inside the dedup window is acknowledged as a duplicate and
// stored once; that is not an error. While no server answers for the stream
// (its leader was lost and the cluster elects another, which takes seconds)
// it tries again every 250 ms until ctx ends: nats.go's default gives up
// after half a second, and the event would be lost.
func (p *Publisher) Publish(ctx context.Context, e Event) error {
	m, err := Encode(e)
	if err != nil {
		return err
	}
	retry := []jetstream.PublishOpt{jetstream.WithRetryAttempts(math.MaxInt32) /* until ctx ends */, jetstream.WithRetryWait(publishRetryWait)}
	_, err = p.js.PublishMsg(ctx, m, retry...)
	if ttlDisabled(err) {
		// A stream made before per-message TTLs, by an identity that may
		// not add them (events.Setup adds them at the next start of the
		// planner, migrator or auditor): store the event for the stream's
		// max age rather than lose it.
		m.Header.Del(jetstream.MsgTTLHeader)
		_, err = p.js.PublishMsg(ctx, m, retry...)
	}
	if err != nil {
		return fmt.Errorf("publish %s %s on %s: %w", e.Type(), e.ID(), m.Subject, err)
	}
	return nil
}

// ttlDisabled reports whether err is JetStream refusing a Nats-TTL header
// on a stream without per-message TTLs.
func ttlDisabled(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == 10166 // JSMessageTTLDisabledErr
}

// IsNotFound reports whether err says a KV key or stream object does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}
