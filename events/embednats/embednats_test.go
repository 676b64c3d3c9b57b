package embednats_test

import (
	"bytes"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events/embednats"
)

// TestLargeMessagesPass: the planner's state for a few hundred nodes is
// over NATS's default 1 MB message size.
func TestLargeMessagesPass(t *testing.T) {
	s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got != embednats.MaxPayload {
		t.Fatalf("max payload %d, want %d", got, embednats.MaxPayload)
	}
	if err := nc.Publish("big", bytes.Repeat([]byte("x"), 3<<20)); err != nil {
		t.Fatalf("publish 3 MB: %v", err)
	}
}
