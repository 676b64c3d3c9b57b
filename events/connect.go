package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect dials NATS with reconnects that never give up (a service outlives a
// server restart), opens JetStream and runs Setup. name identifies the client
// in the server's monitoring.
func Connect(ctx context.Context, url, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w (is the server running? cutover dev starts one on 127.0.0.1:4222)", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open JetStream at %s: %w", url, err)
	}
	if err := Setup(ctx, js, SetupConfig{}); err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%w (is JetStream enabled on %s?)", err, url)
	}
	return nc, js, nil
}
