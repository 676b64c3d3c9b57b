package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

var eventually = natstest.Eventually

// rejections collects dev.cutover.event.rejected events.
func rejections(t *testing.T, nc *nats.Conn) func() []events.EventRejected {
	t.Helper()
	var mu sync.Mutex
	var got []events.EventRejected
	sub, err := nc.Subscribe(events.SubjectRejected, func(m *nats.Msg) {
		e, err := events.Decode(m.Header, m.Data)
		if err != nil {
			t.Errorf("rejection event does not decode: %v", err)
			return
		}
		r, _ := events.DataAs[events.EventRejected](e)
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() []events.EventRejected {
		mu.Lock()
		defer mu.Unlock()
		return append([]events.EventRejected(nil), got...)
	}
}

func consume(t *testing.T, js jetstream.JetStream, cfg events.ConsumerConfig, h events.Handler) {
	t.Helper()
	c, err := events.Consume(t.Context(), js, cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
}

func upgradeRequest(t *testing.T) events.Event {
	t.Helper()
	return sampleEvent(samples[0])
}

func TestPublishDeduplicatesRepublishedID(t *testing.T) {
	s := natstest.Start(t)
	pub := events.NewPublisher(s.JS)
	e := upgradeRequest(t)
	for range 3 {
		if err := pub.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after publishing one id 3 times, want 1", info.State.Msgs)
	}
}

func TestConsumeRejectsMalformedAndKeepsRunning(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var handled atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}},
		func(ctx context.Context, e events.Event) error { handled.Add(1); return nil })

	bad := func(mutate func(map[string]any)) []byte {
		raw, _ := json.Marshal(upgradeRequest(t))
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		mutate(m)
		out, _ := json.Marshal(m)
		return out
	}
	cases := []struct {
		name, field, reason string
		body                []byte
	}{
		{"not JSON", "", "not a JSON object", []byte("definitely not json")},
		{"no type", "type", "required", bad(func(m map[string]any) { delete(m, "type") })},
		{"unknown type", "type", "not a cutover event type", bad(func(m map[string]any) { m["type"] = "dev.cutover.bogus" })},
		{"schema", "data.release.name", "required", bad(func(m map[string]any) { delete(m["data"].(map[string]any)["release"].(map[string]any), "name") })},
		{"typo", "data.failure_acton", `did you mean "failure_action"`, bad(func(m map[string]any) { m["data"].(map[string]any)["failure_acton"] = "pause" })},
		{"specversion 0.3", "specversion", "1.0 only", bad(func(m map[string]any) { m["specversion"] = "0.3" })},
		{"upper-case extension", "UpgradeID", "lower-case", bad(func(m map[string]any) { m["UpgradeID"] = "u1" })},
		{"bad time", "time", "RFC 3339", bad(func(m map[string]any) { m["time"] = "now" })},
	}
	for _, c := range cases {
		if _, err := s.JS.Publish(t.Context(), events.SubjectUpgradeRequested, c.body); err != nil {
			t.Fatal(err)
		}
	}
	// A valid request after the garbage is still handled: the consumer keeps running.
	natstest.Publish(t, s.JS, upgradeRequest(t))
	eventually(t, 10*time.Second, "a rejection each and 1 handled event", func() bool { return len(got()) == len(cases) && handled.Load() == 1 })
	for i, c := range cases {
		r := got()[i]
		if r.Field != c.field || !strings.Contains(r.Reason, c.reason) || r.Consumer != "planner" || r.StreamSequence == 0 {
			t.Errorf("%s: rejection = %+v, want field %q and reason containing %q", c.name, r, c.field, c.reason)
		}
	}
	// Terminated, not redelivered: nothing pending on the consumer.
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "planner")
	eventually(t, 5*time.Second, "no pending acks", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

func TestConsumeHandlesRedeliveredEventOnce(t *testing.T) {
	s := natstest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), events.BucketProcessed)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "node-updater-n1", FilterSubjects: []string{events.NodeCmdSubject("node1")}, Processed: kv},
		func(ctx context.Context, e events.Event) error { handled.Add(1); return nil })

	cmd := sampleEvent(samples[9]) // node.update.requested on node1
	m, err := events.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	// The same event arrives twice past the dedup window (a different
	// Nats-Msg-Id): the handler must still run once.
	for i := range 2 {
		m.Header.Set(nats.MsgIdHdr, cmd.ID()+"-retry"+string(rune('0'+i)))
		if _, err := s.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "node-updater-n1")
	eventually(t, 5*time.Second, "both deliveries acked", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.AckFloor.Stream == 2
	})
	if n := handled.Load(); n != 1 {
		t.Fatalf("handler ran %d times for one event id, want 1", n)
	}
}

func TestConsumeRetriesTransientErrorsThenGivesUp(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var calls atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}, MaxDeliver: 3, BackoffBase: 10 * time.Millisecond},
		func(ctx context.Context, e events.Event) error { calls.Add(1); return errors.New("database is down") })
	natstest.Publish(t, s.JS, upgradeRequest(t))
	eventually(t, 10*time.Second, "rejection after 3 deliveries", func() bool { return len(got()) == 1 })
	if r := got()[0]; !strings.Contains(r.Reason, "gave up after 3 deliveries: database is down") {
		t.Errorf("reason = %q", r.Reason)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3 (MaxDeliver)", n)
	}
}

// TestConsumeTerminatesAPanickingMessage: a handler panic is a bug a
// redelivery would hit again, so the message is terminated and rejected
// once, naming the type and the panic, and the next message is handled.
func TestConsumeTerminatesAPanickingMessage(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var calls atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}, BackoffBase: 10 * time.Millisecond},
		func(ctx context.Context, e events.Event) error {
			if calls.Add(1) == 1 {
				var m map[string]int
				m["boom"]++ // a nil-map write: a real runtime panic
			}
			return nil
		})
	pub := events.NewPublisher(s.JS)
	first := upgradeRequest(t)
	if err := pub.Publish(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(t.Context(), sampleEvent(samples[0])); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the next message handled after the panic", func() bool { return calls.Load() == 2 })
	eventually(t, 5*time.Second, "one rejection", func() bool { return len(got()) == 1 })
	r := got()[0]
	if r.EventID != first.ID() || r.RejectedType != events.TypeUpgradeRequested || !strings.Contains(r.Reason, "panic while handling dev.cutover.upgrade.requested: assignment to entry in nil map") {
		t.Errorf("rejection = %+v", r)
	}
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "planner")
	eventually(t, 5*time.Second, "both settled, none redelivered", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.AckFloor.Stream == 2 && info.NumRedelivered == 0
	})
	if n := calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2 (the panicking message is not redelivered)", n)
	}
}

func TestConsumePermanentErrorIsRejectedAtOnce(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var calls atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}},
		func(ctx context.Context, e events.Event) error {
			calls.Add(1)
			return events.Permanent(errors.New("workload host without drain"))
		})
	e := upgradeRequest(t)
	natstest.Publish(t, s.JS, e)
	eventually(t, 10*time.Second, "rejection", func() bool { return len(got()) == 1 })
	if r := got()[0]; r.EventID != e.ID() || r.RejectedType != e.Type() || r.Reason != "workload host without drain" {
		t.Errorf("rejection = %+v", r)
	}
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", calls.Load())
	}
}

func TestConsumeSendsInProgressDuringLongWork(t *testing.T) {
	s := natstest.Start(t)
	var calls atomic.Int32
	release := make(chan struct{})
	consume(t, s.JS, events.ConsumerConfig{Durable: "slow", FilterSubjects: []string{events.SubjectUpgradeRequested}, AckWait: 600 * time.Millisecond},
		func(ctx context.Context, e events.Event) error {
			calls.Add(1)
			<-release
			return nil
		})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before the consumer's Close, so a failing test does not hang
	natstest.Publish(t, s.JS, upgradeRequest(t))
	eventually(t, 5*time.Second, "handler started", func() bool { return calls.Load() == 1 })
	// Hold the handler for several AckWaits; InProgress must keep the server
	// from redelivering. The consumer's redelivery count is the observable.
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "slow")
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.NumRedelivered > 0 {
			t.Fatal("message redelivered while its handler was still working")
		}
		time.Sleep(100 * time.Millisecond)
	}
	unblock()
	eventually(t, 5*time.Second, "ack", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0
	})
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times, want 1", calls.Load())
	}
}

// TestStreamAllowsMoreConsumersThanTheServerDefault: one durable consumer
// per node-updater must not stop at nats-server's default of 1,000 per stream.
func TestStreamAllowsMoreConsumersThanTheServerDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 1,050 consumers")
	}
	s := natstest.Start(t)
	for i := range 1050 {
		if _, err := s.JS.CreateOrUpdateConsumer(t.Context(), events.StreamName, jetstream.ConsumerConfig{
			Durable: fmt.Sprintf("node-updater-n%d", i), FilterSubjects: []string{events.NodeCmdSubject(fmt.Sprintf("n%d", i))}, AckPolicy: jetstream.AckExplicitPolicy,
		}); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
}

func TestConsumeSkipsTypesTheHandlerDoesNotWant(t *testing.T) {
	s := natstest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), events.BucketProcessed)
	if err != nil {
		t.Fatal(err)
	}
	rejected := rejections(t, s.Conn)
	var handled atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "picky", FilterSubjects: []string{events.NodeStatusSubject("n1")}, Processed: kv,
		Types: []string{events.TypeNodeUpdateCompleted}},
		func(ctx context.Context, e events.Event) error { handled.Add(1); return nil })
	pub := events.NewPublisher(s.JS)
	for _, d := range []events.Data{
		events.NodeHeartbeat{AgentVersion: "x", Runtime: "sim"},
		events.ContainerDraining{Container: "web"},
		events.NodeUpdateCompleted{Results: []events.ContainerResult{}},
	} {
		if err := pub.Publish(t.Context(), events.MustNew(events.Source("node-updater", "n1"), d, events.WithNode("n1"))); err != nil {
			t.Fatal(err)
		}
	}
	// Two messages it would not act on, in either mode, whose data is not
	// valid: acked on their type alone, never decoded. And one without a
	// type: decoded, and rejected.
	subject := events.NodeStatusSubject("n1")
	structured := nats.NewMsg(subject)
	structured.Data = []byte(`{"specversion":"1.0","id":"x1","source":"/n1","type":"` + events.TypeContainerDraining + `","data":{"container":7}}`)
	binary := nats.NewMsg(subject)
	binary.Header.Set("ce-specversion", "1.0")
	binary.Header.Set("ce-id", "x2")
	binary.Header.Set("ce-source", "/n1")
	binary.Header.Set("ce-type", "dev.cutover.container%2Edraining")
	binary.Data = []byte(`{"container":7}`)
	untyped := nats.NewMsg(subject)
	untyped.Data = []byte(`{"specversion":"1.0","id":"x3","source":"/n1"}`)
	for _, m := range []*nats.Msg{structured, binary, untyped} {
		if _, err := s.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "picky")
	eventually(t, 5*time.Second, "all six settled", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.AckFloor.Stream == 6
	})
	if handled.Load() != 1 {
		t.Errorf("handler ran %d times, want 1 (only the completion)", handled.Load())
	}
	eventually(t, 5*time.Second, "the untyped message rejected", func() bool { return len(rejected()) == 1 })
	if r := rejected()[0]; r.Field != "type" {
		t.Errorf("rejection names field %q, want type; the typed ones must be acked unread (%+v)", r.Field, rejected())
	}
	// Only the handled event is remembered: the others cost no KV write.
	keys, err := kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys.Keys() {
		if !strings.HasPrefix(k, "rejected.") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d handled ids recorded, want 1", n)
	}
}

// TestPoisonMessageRejectedOnceAcrossConsumers: the ce-specversion: 0
// message of issue 13 crashed every consumer that read it. Two consumers
// (a planner and an auditor) read it: both keep running, handle a valid event
// after it, and one rejection names the field, the id and the type.
func TestPoisonMessageRejectedOnceAcrossConsumers(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var planned, audited atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}, Types: []string{events.TypeUpgradeRequested}},
		func(ctx context.Context, e events.Event) error { planned.Add(1); return nil })
	consume(t, s.JS, events.ConsumerConfig{Durable: "auditor", FilterSubjects: []string{events.SubjectAll}},
		func(ctx context.Context, e events.Event) error {
			if e.Type() == events.TypeUpgradeRequested {
				audited.Add(1)
			}
			return nil
		})
	poison := natstest.Poison(events.SubjectUpgradeRequested, events.TypeUpgradeRequested, "poison-1")
	poison.Data = []byte(`{"release":{"name":"x","services":{"web":{"image":"web:2"}}}}`)
	if _, err := s.JS.PublishMsg(t.Context(), poison); err != nil {
		t.Fatal(err)
	}
	natstest.Publish(t, s.JS, upgradeRequest(t))
	eventually(t, 10*time.Second, "the valid request handled by both", func() bool { return planned.Load() == 1 && audited.Load() == 1 })
	// Both consumers have settled the poison message before the valid one;
	// give the second rejection, if any, its chance to arrive.
	for _, name := range []string{"planner", "auditor"} {
		natstest.Settled(t, s.JS, name, 5*time.Second)
	}
	eventually(t, 5*time.Second, "a rejection", func() bool { return len(got()) >= 1 })
	st, _ := s.JS.Stream(t.Context(), events.StreamName)
	info, _ := st.Info(t.Context(), jetstream.WithSubjectFilter(events.SubjectRejected))
	if n := info.State.Subjects[events.SubjectRejected]; n != 1 {
		t.Errorf("%d rejections stored for one bad message, want 1", n)
	}
	r := got()[0]
	if r.Field != "specversion" || r.EventID != "poison-1" || r.RejectedType != events.TypeUpgradeRequested || r.Subject != events.SubjectUpgradeRequested {
		t.Errorf("rejection = %+v, want field specversion, event_id poison-1, its type and subject", r)
	}
}

// TestRejectionReportedOnceAfterTheDedupWindow: a consumer that reads a bad
// message after the stream's deduplication window (a node-updater started
// later) does not report it again.
func TestRejectionReportedOnceAfterTheDedupWindow(t *testing.T) {
	s := natstest.Start(t)
	// Setup keeps an existing stream's settings: shorten the window as an
	// operator would.
	st, err := s.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := s.JS.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	got := rejections(t, s.Conn)
	if _, err := s.JS.Publish(t.Context(), events.SubjectUpgradeRequested, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	consume(t, s.JS, events.ConsumerConfig{Durable: "first", FilterSubjects: []string{events.SubjectUpgradeRequested}},
		func(ctx context.Context, e events.Event) error { return nil })
	eventually(t, 5*time.Second, "the first rejection", func() bool { return len(got()) == 1 })
	// Past the window: a republished id is no longer dropped by the server.
	probe := upgradeRequest(t)
	eventually(t, 5*time.Second, "the dedup window to pass", func() bool {
		m, _ := events.Encode(probe)
		ack, err := s.JS.PublishMsg(t.Context(), m)
		return err == nil && !ack.Duplicate && ack.Sequence > 3
	})
	var later atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "later", FilterSubjects: []string{events.SubjectUpgradeRequested}},
		func(ctx context.Context, e events.Event) error { later.Add(1); return nil })
	eventually(t, 5*time.Second, "the later consumer past the bad message", func() bool { return later.Load() >= 1 })
	natstest.Settled(t, s.JS, "later", 5*time.Second)
	st, _ = s.JS.Stream(t.Context(), events.StreamName)
	info, _ := st.Info(t.Context(), jetstream.WithSubjectFilter(events.SubjectRejected))
	if n := info.State.Subjects[events.SubjectRejected]; n != 1 {
		t.Errorf("%d rejections stored for one bad message read by two consumers, want 1", n)
	}
}

// TestConsumeRejectsATypeOnAForeignSubject: an upgrade request published on
// a health subject was planned and completed; subject permissions meant
// nothing. Now the consumer rejects it, once.
func TestConsumeRejectsATypeOnAForeignSubject(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var handled atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "auditor", FilterSubjects: []string{events.SubjectAll}},
		func(ctx context.Context, e events.Event) error {
			if e.Type() == events.TypeUpgradeRequested {
				handled.Add(1)
			}
			return nil
		})
	req := upgradeRequest(t)
	m, err := events.Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	m.Subject = "cutover.health.web.n1"
	if _, err := s.JS.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a rejection", func() bool { return len(got()) == 1 })
	if r := got()[0]; r.Field != "type" || r.EventID != req.ID() || !strings.Contains(r.Reason, "arrive on cutover.upgrade.requested, not on cutover.health.web.n1") {
		t.Errorf("rejection = %+v", r)
	}
	if handled.Load() != 0 {
		t.Error("the request on a health subject reached the handler")
	}
}

// TestConsumeRejectsAReusedRequestID: an upgrade request copied from the
// README with its id kept, but other content, was acked as a redelivery and
// silently dropped. It is now rejected with a word about choosing a new id;
// a true redelivery (same content) is still acked without a rejection.
func TestConsumeRejectsAReusedRequestID(t *testing.T) {
	s := natstest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), events.BucketProcessed)
	if err != nil {
		t.Fatal(err)
	}
	got := rejections(t, s.Conn)
	var handled atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}, Processed: kv},
		func(ctx context.Context, e events.Event) error { handled.Add(1); return nil })
	publish := func(release string) {
		t.Helper()
		e := events.MustNew("/ops/alice", events.UpgradeRequested{Release: events.Release{Name: release, Services: map[string]events.ServiceRelease{"web": {Image: "web:" + release}}}},
			events.WithID("my upgrade 0001")) // not even a valid KV key
		m, err := events.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		m.Header.Del(nats.MsgIdHdr) // as `nats pub` sends it: no server-side dedup
		if _, err := s.JS.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	publish("1")
	publish("1") // a redelivery: same content
	publish("2") // the id reused for another request
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "planner")
	eventually(t, 5*time.Second, "all three settled", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.AckFloor.Stream >= 3 && info.NumAckPending == 0
	})
	eventually(t, 5*time.Second, "one rejection", func() bool { return len(got()) == 1 })
	if r := got()[0]; r.Field != "id" || !strings.Contains(r.Reason, "choose a new id") || r.StreamSequence != 3 {
		t.Errorf("rejection = %+v, want field id, the third message, and the advice to choose a new id", r)
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}
}

func TestHandlerSeesTheStreamPosition(t *testing.T) {
	s := natstest.Start(t)
	got := make(chan events.MsgInfo, 2)
	consume(t, s.JS, events.ConsumerConfig{Durable: "auditor", FilterSubjects: []string{events.SubjectUpgradeRequested}},
		func(ctx context.Context, e events.Event) error {
			mi, ok := events.MsgInfoFrom(ctx)
			if !ok {
				t.Error("no MsgInfo in the handler's context")
			}
			got <- mi
			return nil
		})
	for range 2 {
		natstest.Publish(t, s.JS, sampleEvent(samples[0]))
	}
	for want := uint64(1); want <= 2; want++ {
		if mi := <-got; mi.Sequence != want || mi.Stream != events.StreamName || mi.Timestamp.IsZero() {
			t.Errorf("MsgInfo = %+v, want sequence %d of %s with a timestamp", mi, want, events.StreamName)
		}
	}
}

// TestRestartNeverReadsAPoisonMessageAgain: `cutover dev` restarted on the
// same data died again within 8 s, because the poison message was never
// acked. Terminated, it is never delivered again to the restarted
// consumer, and not reported again.
func TestRestartNeverReadsAPoisonMessageAgain(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	poison := natstest.Poison(events.SubjectUpgradeRequested, events.TypeUpgradeRequested, "poison-1")
	if _, err := s.JS.PublishMsg(t.Context(), poison); err != nil {
		t.Fatal(err)
	}
	cfg := events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}}
	c, err := events.Consume(t.Context(), s.JS, cfg, func(ctx context.Context, e events.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the rejection", func() bool { return len(got()) == 1 })
	_ = c.Close(context.Background())

	var handled atomic.Int32
	consume(t, s.JS, cfg, func(ctx context.Context, e events.Event) error { handled.Add(1); return nil })
	natstest.Publish(t, s.JS, upgradeRequest(t))
	eventually(t, 5*time.Second, "the valid request after the restart", func() bool { return handled.Load() == 1 })
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "planner")
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.NumAckPending != 0 || len(got()) != 1 {
		t.Errorf("after the restart: %d redelivered, %d pending, %d rejections; want 0, 0, 1", info.NumRedelivered, info.NumAckPending, len(got()))
	}
}

// TestConsumeRejectsAnEventOverItsTypeLimit: a health signal over its 64 KiB
// limit (under the stream's 1 MiB) is rejected by the consumer, naming the
// limit; the next signal is handled.
func TestConsumeRejectsAnEventOverItsTypeLimit(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	var handled atomic.Int32
	consume(t, s.JS, events.ConsumerConfig{Durable: "auditor", FilterSubjects: []string{events.SubjectHealthSignals}},
		func(ctx context.Context, e events.Event) error { handled.Add(1); return nil })
	ok := events.MustNew("/monitor", events.HealthSignal{Service: "web", Node: "n1", Status: "fail"}, events.WithSubject("web"), events.WithNode("n1"))
	m, err := events.Encode(ok)
	if err != nil {
		t.Fatal(err)
	}
	big := nats.NewMsg(m.Subject)
	big.Header = m.Header
	big.Data = []byte(strings.Replace(string(m.Data), `"status":"fail"`, `"status":"fail","message":"`+strings.Repeat("x", 100<<10)+`"`, 1))
	big.Header.Set(nats.MsgIdHdr, "big-1")
	if _, err := s.JS.PublishMsg(t.Context(), big); err != nil {
		t.Fatal(err)
	}
	natstest.Publish(t, s.JS, ok)
	eventually(t, 5*time.Second, "the rejection and the next signal", func() bool { return len(got()) == 1 && handled.Load() == 1 })
	if r := got()[0]; !strings.Contains(r.Reason, "limit of a dev.cutover.health.signal event") || r.EventID != ok.ID() {
		t.Errorf("rejection = %+v", r)
	}
}

// TestManyConsumersOneRejectionEach: three consumers read thirty bad
// messages at the same time. A subscriber on cutover.event.rejected (an
// alert, `nats sub`) sees each reported exactly once: JetStream's dedup
// only keeps duplicates out of the stream, a core subscriber would see every
// publish, so one consumer claims each message before publishing.
func TestManyConsumersOneRejectionEach(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	const bad = 30
	for i := range bad {
		if _, err := s.JS.Publish(t.Context(), events.SubjectUpgradeRequested, fmt.Appendf(nil, "garbage %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"planner", "auditor", "other"} {
		consume(t, s.JS, events.ConsumerConfig{Durable: name, FilterSubjects: []string{events.SubjectUpgradeRequested}},
			func(ctx context.Context, e events.Event) error { return nil })
	}
	for _, name := range []string{"planner", "auditor", "other"} {
		natstest.Settled(t, s.JS, name, 10*time.Second)
	}
	eventually(t, 5*time.Second, "a rejection per message", func() bool { return len(got()) >= bad })
	per := map[uint64]int{}
	for _, r := range got() {
		per[r.StreamSequence]++
	}
	for seq, n := range per {
		if n != 1 {
			t.Errorf("message %d reported %d times to a subscriber, want once", seq, n)
		}
	}
	if len(per) != bad {
		t.Errorf("%d messages reported, want %d", len(per), bad)
	}
}

// TestRejectionThatCannotBePublishedIsRetried: when the rejection cannot
// be published (here the stream stops taking cutover.event.rejected), the
// bad message comes back instead of being terminated unreported; once the
// rejection can go out, it is stored once and the message terminated.
func TestRejectionThatCannotBePublishedIsRetried(t *testing.T) {
	s := natstest.Start(t)
	got := rejections(t, s.Conn)
	st, err := s.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	narrow := cfg
	narrow.Subjects = []string{"cutover.upgrade.>"}
	if _, err := s.JS.UpdateStream(t.Context(), narrow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JS.Publish(t.Context(), events.SubjectUpgradeRequested, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	consume(t, s.JS, events.ConsumerConfig{Durable: "planner", FilterSubjects: []string{events.SubjectUpgradeRequested}, BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond},
		func(ctx context.Context, e events.Event) error { return nil })
	cons, _ := s.JS.Consumer(t.Context(), events.StreamName, "planner")
	eventually(t, 10*time.Second, "the message to come back", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumRedelivered > 0
	})
	if _, err := s.JS.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	// The failed attempts reached core subscribers (NATS delivers a publish
	// whether or not a stream stores it); the stream keeps the one that
	// succeeded.
	eventually(t, 30*time.Second, "the rejection stored once the stream takes it", func() bool {
		info, err := st.Info(t.Context(), jetstream.WithSubjectFilter(events.SubjectRejected))
		return err == nil && info.State.Subjects[events.SubjectRejected] == 1
	})
	eventually(t, 5*time.Second, "the message terminated", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if len(got()) == 0 {
		t.Error("no subscriber saw a rejection")
	}
}

// TestConsumePullsWithAShortHeartbeat: a consumer's pull requests ask the
// server for an idle heartbeat every 5 s, so a pull the cluster lost (its
// consumer's leader died, or it was answered "no responders" before a new
// consumer's leader was known) is pulled again within 10 s, not the 30 s
// of nats.go's default. Seen in the 3-server fleet benchmark: a
// node-updater's command waited 25 s with no pull at the server.
func TestConsumePullsWithAShortHeartbeat(t *testing.T) {
	s := natstest.Start(t)
	pulls := make(chan *nats.Msg, 4)
	sub, err := s.Conn.ChanSubscribe("$JS.API.CONSUMER.MSG.NEXT."+events.StreamName+".hb-test", pulls)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c, err := events.Consume(t.Context(), s.JS, events.ConsumerConfig{Durable: "hb-test", FilterSubjects: []string{"cutover.node.n1.cmd"}},
		func(context.Context, events.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	select {
	case m := <-pulls:
		var req struct {
			Heartbeat time.Duration `json:"idle_heartbeat"`
		}
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Fatalf("pull request %s: %v", m.Data, err)
		}
		if req.Heartbeat <= 0 || req.Heartbeat > 5*time.Second {
			t.Errorf("pull request asks for a heartbeat every %v; want at most 5s (%s)", req.Heartbeat, m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pull request in 10s")
	}
}
