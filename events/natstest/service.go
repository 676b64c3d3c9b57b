package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// Service is what the services' tests run: started with a context, closed
// with a deadline. A second Close is a no-op.
type Service interface {
	Start(ctx context.Context) error
	Close(ctx context.Context) error
}

// Serve starts svc with the test's context and closes it at the end of the
// test, giving Close up to closeWithin. The returned func closes it earlier;
// the Close at the end is then a no-op. A failed Start or Close fails the test.
func Serve(t testing.TB, svc Service, closeWithin time.Duration) (stop func()) {
	t.Helper()
	if err := svc.Start(t.Context()); err != nil {
		t.Fatalf("start %T: %v", svc, err)
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeWithin)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close %T: %v", svc, err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// Publish publishes each event in turn and fails the test at the first error.
func Publish(t testing.TB, js jetstream.JetStream, es ...events.Event) {
	t.Helper()
	pub := events.NewPublisher(js)
	for _, e := range es {
		if err := pub.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
}
