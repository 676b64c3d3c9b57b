package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

// floodSize is how many heartbeats, and then health signals, one node
// floods the stream with: ten times the per-subject limit the test sets.
const (
	floodSize       = 10_000
	floodPerSubject = 1_000
)

// TestHeartbeatFloodKeepsUpgradeEvents: a node-updater gone wrong sends
// 10,000 heartbeats and a monitor 10,000 health signals for the node's
// service, on a stream keeping 1,000 messages per subject. Every event of
// the upgrade stays; the flood only replaces its own older messages. When
// heartbeats shared the node's status subject, the flood pushed the node's
// container.replaced and node.update.completed out of the stream.
func TestHeartbeatFloodKeepsUpgradeEvents(t *testing.T) {
	s := natstest.Start(t)
	ctx := t.Context()
	st, err := s.JS.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgsPerSubject = floodPerSubject
	if _, err := s.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	const upgrade, node = "u1", "n1"
	src := events.Source("test", node)
	upgradeEvents := []events.Event{
		events.MustNew(src, events.UpgradeStarted{Waves: 1}, events.WithUpgrade(upgrade)),
		events.MustNew(src, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: "web-1", Image: "web:v2"}}}, events.WithUpgrade(upgrade), events.WithNode(node)),
		events.MustNew(src, events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced}, events.WithUpgrade(upgrade), events.WithNode(node)),
		events.MustNew(src, events.NodeUpdateCompleted{}, events.WithUpgrade(upgrade), events.WithNode(node)),
		events.MustNew(src, events.UpgradeCompleted{Release: "r2"}, events.WithUpgrade(upgrade)),
	}
	pub := events.NewPublisher(s.JS)
	for _, e := range upgradeEvents {
		if err := pub.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	flood := func(d events.Data, opts ...events.Option) {
		t.Helper()
		for i := range floodSize {
			m, err := events.Encode(events.MustNew(src, d, opts...))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.JS.PublishMsgAsync(m); err != nil {
				t.Fatal(err)
			}
			if i%500 == 499 { // in batches: on a loaded machine the client stalls past a few thousand in flight
				select {
				case <-s.JS.PublishAsyncComplete():
				case <-time.After(time.Minute):
					t.Fatal("flood not acknowledged within a minute")
				}
			}
		}
	}
	flood(events.NodeHeartbeat{Runtime: "docker", Containers: 20}, events.WithNode(node))
	flood(events.HealthSignal{Service: "web", Node: node, Status: "fail"}, events.WithNode(node), events.WithSubject("web"))

	for _, e := range upgradeEvents {
		subj, err := events.Subject(e)
		if err != nil {
			t.Fatal(err)
		}
		if !streamHolds(t, st, subj, e.ID()) {
			t.Errorf("%s %s on %s: pushed out of the stream by the flood", e.Type(), e.ID(), subj)
		}
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.SubjectAll))
	if err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{events.NodeHeartbeatSubject(node), "cutover.health.web." + node} {
		if n := info.State.Subjects[subj]; n != floodPerSubject {
			t.Errorf("%s keeps %d messages, want the per-subject limit %d", subj, n, floodPerSubject)
		}
	}
	last, err := st.GetLastMsgForSubject(ctx, events.NodeHeartbeatSubject(node))
	if err != nil {
		t.Fatal(err)
	}
	if ttl := last.Header.Get(jetstream.MsgTTLHeader); ttl != events.HeartbeatTTL.String() {
		t.Errorf("heartbeat stored with Nats-TTL %q, want %q: heartbeats would stay for the stream's max age", ttl, events.HeartbeatTTL)
	}
}

// streamHolds reports whether the stream still stores the event id on subj.
func streamHolds(t *testing.T, st jetstream.Stream, subj, id string) bool {
	t.Helper()
	c, err := st.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for n := info.NumPending; n > 0; n-- {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if m.Headers().Get("Nats-Msg-Id") == id {
			return true
		}
	}
	return false
}

// TestHeartbeatOnAStreamWithoutTTLs: a stream made before per-message
// TTLs refuses a Nats-TTL header; a node-updater, which may not change the
// stream, still gets its heartbeat stored.
func TestHeartbeatOnAStreamWithoutTTLs(t *testing.T) {
	js := natstest.Start(t).JS
	if err := js.DeleteStream(t.Context(), events.StreamName); err != nil { // Start set it up
		t.Fatal(err)
	}
	cfg := events.SetupConfig{}.StreamConfig()
	cfg.AllowMsgTTL = false
	st, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hb := events.MustNew(events.Source("test", "n1"), events.NodeHeartbeat{Runtime: "docker"}, events.WithNode("n1"))
	if err := events.NewPublisher(js).Publish(t.Context(), hb); err != nil {
		t.Fatalf("heartbeat on a stream without per-message TTLs: %v", err)
	}
	if !streamHolds(t, st, events.NodeHeartbeatSubject("n1"), hb.ID()) {
		t.Error("heartbeat not stored")
	}
}

// TestPublishRidesOutALeaderElection: while no server answers for the
// stream (a cluster electing a new stream leader; here, a stream not made
// yet) Publish tries again until its context ends. It gave up after half a
// second before, and a node-updater lost the container.replaced of a
// replacement it had made while the stream's leader was down.
func TestPublishRidesOutALeaderElection(t *testing.T) {
	js := natstest.Start(t).JS
	cfg := streamInfo(t, js, events.StreamName)
	if err := js.DeleteStream(t.Context(), events.StreamName); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	e := events.MustNew(events.Source("test", "n1"), events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced}, events.WithNode("n1"))
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		done <- events.NewPublisher(js).Publish(ctx, e)
	}()
	time.Sleep(1500 * time.Millisecond) // three times what nats.go's default retries last
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("publish while nobody answered for the stream, then it came back: %v", err)
	}
}
