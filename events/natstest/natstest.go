// Package natstest starts a real embedded nats-server with JetStream for
// tests, with the cutover stream and buckets set up.
package natstest

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"sync"
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
	if err := events.Setup(t.Context(), js, events.SetupConfig{Logger: slog.New(slog.DiscardHandler)}); err != nil {
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

// Recorder keeps every valid event published on cutover.>, in arrival order.
type Recorder struct {
	mu  sync.Mutex
	all []events.Event
}

// Record starts recording every event the server carries, until the test ends.
func (s *Server) Record(t testing.TB) *Recorder {
	t.Helper()
	r := &Recorder{}
	sub, err := s.Conn.Subscribe(events.SubjectAll, func(m *nats.Msg) {
		if e, err := events.Decode(m.Header, m.Data); err == nil {
			r.mu.Lock()
			r.all = append(r.all, e)
			r.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

// All returns a copy of the events recorded so far.
func (r *Recorder) All() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]events.Event(nil), r.all...)
}

// Of returns the events of one type recorded so far.
func (r *Recorder) Of(typ string) []events.Event {
	var out []events.Event
	for _, e := range r.All() {
		if e.Type() == typ {
			out = append(out, e)
		}
	}
	return out
}

// Settled waits until the durable consumer has settled every message the
// stream held for it when the wait began, and returns its info. A
// consumer's pending count alone is not enough: the server updates it
// asynchronously after a store, so right after a publish it can read 0
// before the consumer has seen the message.
func Settled(t testing.TB, js jetstream.JetStream, durable string, d time.Duration) *jetstream.ConsumerInfo {
	t.Helper()
	ctx := t.Context()
	cons, err := js.Consumer(ctx, events.StreamName, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	filters := info.Config.FilterSubjects
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	if len(filters) == 0 {
		filters = []string{">"}
	}
	var last uint64 // the stream's newest message for the consumer now
	for _, f := range filters {
		m, err := st.GetLastMsgForSubject(ctx, f)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("last message on %s: %v", f, err)
		}
		last = max(last, m.Sequence)
	}
	Eventually(t, d, "consumer "+durable+" to settle every message up to stream sequence "+strconv.FormatUint(last, 10), func() bool {
		info, err = cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Stream >= last
	})
	return info
}

// Poison returns a message on subject that says it is an event of type typ
// with ce-id id but carries CloudEvents spec version 0, which no decoder
// accepts: what a hand-made publish (nats pub) can leave on the stream.
func Poison(subject, typ, id string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set("ce-specversion", "0")
	m.Header.Set("ce-id", id)
	m.Header.Set("ce-source", "/nats-cli")
	m.Header.Set("ce-type", typ)
	return m
}

// Logs is a log sink tests read back, safe for the goroutines of every
// service writing to it.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Logger is a text logger writing to l.
func (l *Logs) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
