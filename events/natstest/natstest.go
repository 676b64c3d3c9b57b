// Package natstest starts a real embedded nats-server with JetStream for
// tests, with the cutover stream and buckets set up.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
)

// Server is a running test server and a connection to it.
type Server struct {
	*server.Server
	Conn *nats.Conn
	JS   jetstream.JetStream
	Dir  string
}

// Start runs a server on a free loopback port with its store in a temp dir,
// sets up the stream and buckets, and stops everything at the end of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn is Start with a given store dir, to restart a server on the same data.
func StartIn(t testing.TB, dir string) *Server {
	t.Helper()
	s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: dir, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		s.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		s.Shutdown()
		s.WaitForShutdown()
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Setup(t.Context(), js, events.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	return &Server{Server: s, Conn: nc, JS: js, Dir: dir}
}

// Eventually polls cond every 10ms until it holds, and fails the test when it
// still does not after d. Tests wait with it instead of sleeping.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
