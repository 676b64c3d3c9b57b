package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

// downRuntime is an engine that cannot be reached. Methods it does not
// override panic through the nil embedded interface: the handler must not
// call them.
type downRuntime struct{ Runtime }

func (downRuntime) Name() string { return "down" }
func (downRuntime) List(context.Context, string) ([]Container, error) {
	return nil, fmt.Errorf("dial unix docker.sock: %w", ErrUnavailable)
}
func (downRuntime) Inspect(context.Context, string) (Container, error) {
	return Container{}, fmt.Errorf("dial unix docker.sock: %w", ErrUnavailable)
}

// TestHandlerWithoutEngine checks the handler's error contract without
// Docker: a command it cannot even look at is retried (a plain error), a
// message of the wrong type is rejected (Permanent), and neither reports a
// node status.
func TestHandlerWithoutEngine(t *testing.T) {
	ns := natstest.Start(t)
	u, err := New(Config{Node: "n1", Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, ns.JS, downRuntime{})
	if err != nil {
		t.Fatal(err)
	}
	// handle is called directly, without Start; it needs the nodes bucket.
	if u.nodes, err = ns.JS.KeyValue(t.Context(), events.BucketNodes); err != nil {
		t.Fatal(err)
	}

	cmd := events.MustNew(events.Source("planner", ""), events.NodeUpdateRequested{
		Containers: []events.ContainerTarget{{Container: "web", Image: "reg/web:v2"}},
	}, events.WithNode("n1"))
	err = u.handle(t.Context(), cmd)
	var pe *events.PermanentError
	if !errors.Is(err, ErrUnavailable) || errors.As(err, &pe) {
		t.Errorf("engine down: handle = %v, want a retryable error wrapping ErrUnavailable", err)
	}

	other := events.MustNew(events.Source("node-updater", "n1"), events.NodeHeartbeat{AgentVersion: "x", Runtime: "down"}, events.WithNode("n1"))
	if err := u.handle(t.Context(), other); !errors.As(err, &pe) {
		t.Errorf("wrong type: handle = %v, want a PermanentError", err)
	}

	stream, err := ns.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.GetLastMsgForSubject(t.Context(), events.NodeStatusSubject("n1")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("a status event was published: %v", err)
	}
}
