package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes events on JetStream.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish encodes e and publishes it, waiting for the stream's acknowledgement.
// A republished id inside the dedup window is acknowledged as a duplicate and
// stored once; that is not an error.
func (p *Publisher) Publish(ctx context.Context, e Event) error {
	m, err := Encode(e)
	if err != nil {
		return err
	}
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish %s %s on %s: %w", e.Type(), e.ID(), m.Subject, err)
	}
	return nil
}

// IsNotFound reports whether err says a KV key or stream object does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}
