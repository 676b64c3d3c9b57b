package verdict_test

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

var eventually = natstest.Eventually

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// bus is the stream's events as the watcher tests read them.
type bus struct{ *natstest.Recorder }

func record(t testing.TB, s *natstest.Server) *bus { return &bus{s.Record(t)} }

func (b *bus) of(typ string) []events.Event { return b.Of(typ) }

func startWatcher(t testing.TB, js jetstream.JetStream, cfg verdict.WatcherConfig) *verdict.Watcher {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	w, err := verdict.NewWatcher(cfg, js)
	if err != nil {
		t.Fatal(err)
	}
	natstest.Serve(t, w, 10*time.Second)
	return w
}

var publish = natstest.Publish

func failing(service, node string) events.Event {
	return events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: service, Node: node, Status: "fail", Check: "http /healthz", Message: "HTTP 503"},
		events.WithSubject(service), events.WithNode(node))
}

// handUpgrade publishes a plan and a completed wave for services web and
// db on n1, as the planner would, and returns the upgrade id.
func handUpgrade(t testing.TB, js jetstream.JetStream) string {
	t.Helper()
	id := fmt.Sprintf("up-%d", time.Now().UnixNano())
	p := func(d events.Data) events.Event {
		return events.MustNew(events.Source("planner", ""), d, events.WithUpgrade(id))
	}
	publish(t, js,
		p(events.UpgradePlanned{Release: "v2", Changes: []events.ContainerChange{{Node: "n1", Container: "web-1", Service: "web"}, {Node: "n1", Container: "db-1", Service: "db"}},
			Waves: []events.PlannedWave{{Index: 0, Nodes: []string{"n1"}}}}),
		p(events.WaveStarted{Wave: 0, Nodes: []string{"n1"}}),
		p(events.WaveCompleted{Wave: 0, Nodes: []string{"n1"}, Replaced: 2}))
	return id
}

// TestMissingSignalIsInconclusive: with no signal in the watch window the
// verdict is inconclusive, and no rollback is asked for. Garbage on a health
// subject and signals for unknown services are counted and dropped.
func TestMissingSignalIsInconclusive(t *testing.T) {
	s := natstest.Start(t)
	b := record(t, s)
	w := startWatcher(t, s.JS, verdict.WatcherConfig{Judge: verdict.Config{Watch: 500 * time.Millisecond}})

	id := handUpgrade(t, s.JS)
	pass := events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "web", Node: "n1", Status: "pass"}, events.WithSubject("web"), events.WithNode("n1"))
	publish(t, s.JS, pass, failing("nosuch", "n1"))
	if _, err := s.JS.Publish(t.Context(), "cutover.health.web.n1", []byte("{not an event")); err != nil {
		t.Fatal(err)
	}

	eventually(t, 15*time.Second, "two verdicts", func() bool { return len(b.of(events.TypeHealthVerdict)) == 2 })
	got := map[string]string{}
	for _, e := range b.of(events.TypeHealthVerdict) {
		d, _ := events.DataAs[events.HealthVerdict](e)
		got[d.Service] = d.Verdict
		if events.UpgradeID(e) != id {
			t.Errorf("verdict for %s has upgrade %q, want %q", d.Service, events.UpgradeID(e), id)
		}
	}
	if got["db"] != verdict.Inconclusive || got["web"] != verdict.Healthy {
		t.Errorf("verdicts = %v, want db inconclusive (no signal) and web healthy", got)
	}
	if n := len(b.of(events.TypeRollbackRequested)); n != 0 {
		t.Errorf("%d rollback requests, want none", n)
	}
	st := w.Stats()
	if st.Garbage != 1 || st.Unknown != 1 || st.Signals != 1 {
		t.Errorf("stats = %+v, want 1 garbage, 1 unknown, 1 counted", st)
	}
}

// TestRestartedWatcherDecidesOnce stops the watcher while a window is open
// and starts a new one: it rebuilds the window from the stream and the
// verdict, decided again by the new watcher, is stored once (same id).
func TestRestartedWatcherDecidesOnce(t *testing.T) {
	s := natstest.Start(t)
	b := record(t, s)
	cfg := verdict.WatcherConfig{Judge: verdict.Config{Watch: 3 * time.Second}}
	first := startWatcher(t, s.JS, cfg)
	id := handUpgrade(t, s.JS)
	publish(t, s.JS, failing("web", "n1"), failing("web", "n1"), failing("web", "n1"))
	eventually(t, 10*time.Second, "the first watcher's rollback", func() bool { return len(b.of(events.TypeRollbackRequested)) == 1 })
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	second := startWatcher(t, s.JS, cfg)
	eventually(t, 10*time.Second, "the second watcher to decide again", func() bool { return second.Stats().Rollbacks == 1 })
	info, err := s.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	lister := info.ListConsumers(t.Context()) // touch the API so the stream is settled
	for range lister.Info() {
	}
	msgs, err := s.JS.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectRollbackRequest}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := msgs.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if e, err := events.Decode(m.Headers(), m.Data()); err == nil && events.UpgradeID(e) == id {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the stream holds %d rollback requests for %s, want 1: the repeated decision must be deduplicated", n, id)
	}
}

// TestFloodOfSignals publishes 20,000 signals as fast as JetStream takes
// them (mixed: counted, unknown services, garbage) while a window is open:
// the watcher reads them all, its state stays within the caps, the heap
// does not grow with the flood, and a failure after the flood still decides.
func TestFloodOfSignals(t *testing.T) {
	s := natstest.Start(t)
	b := record(t, s)
	w := startWatcher(t, s.JS, verdict.WatcherConfig{Judge: verdict.Config{Watch: time.Minute,
		Policies: map[string]verdict.Policy{"web": {ConsecutiveFailures: 1 << 30}, "db": {}}}})
	handUpgrade(t, s.JS)

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	const n = 20_000
	start := time.Now()
	var futures []jetstream.PubAckFuture
	for i := range n {
		var msg *nats.Msg
		switch i % 4 {
		case 0, 1: // alternate pass/fail on web, never three failures in a row
			status := []string{"pass", "fail"}[i%4]
			e := events.MustNew(events.Source("monitor", ""), events.HealthSignal{Service: "web", Node: "n1", Container: fmt.Sprintf("web-%d", i%100), Status: status},
				events.WithNode("n1"), events.WithSubject("web"))
			m, err := events.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			msg = m
		case 2:
			m, err := events.Encode(failing(fmt.Sprintf("svc-%d", i), "n1"))
			if err != nil {
				t.Fatal(err)
			}
			msg = m
		case 3:
			msg = &nats.Msg{Subject: "cutover.health.web.n1", Data: []byte("garbage")}
		}
		f, err := s.JS.PublishMsgAsync(msg)
		for errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			// The client caps unacknowledged async publishes and gives up
			// after a short stall; on a loaded machine wait for the stream
			// to catch up, then go on with the flood.
			select {
			case <-s.JS.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Fatal("the stream did not catch up with the flood within 60s")
			}
			f, err = s.JS.PublishMsgAsync(msg)
		}
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	select {
	case <-s.JS.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		t.Fatal("the stream did not acknowledge the flood within 60s")
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish signal: %v", err)
		}
	}
	published := time.Since(start)
	eventually(t, 60*time.Second, "the watcher to read the whole flood", func() bool {
		st := w.Stats()
		return st.Signals+st.Unknown+st.Garbage >= n
	})
	took := time.Since(start)
	after := heap()
	st := w.Stats()
	t.Logf("published %d signals in %v (%.0f/s); read them all in %v (%.0f/s); heap %d -> %d bytes; stats %+v",
		n, published, n/published.Seconds(), took, n/took.Seconds(), before, after, st)
	if st.Signals != n/2 || st.Unknown != n/4 || st.Garbage != n/4 {
		t.Errorf("stats = %+v, want %d counted, %d unknown, %d garbage", st, n/2, n/4, n/4)
	}
	if st.Windows > 2 || st.Buffered > 10 {
		t.Errorf("the judge holds %d windows and %d signals after the flood, want at most 2 and 10", st.Windows, st.Buffered)
	}
	// The embedded NATS server shares the heap; 64 MiB is far below what
	// keeping 20,000 signals would cost with their buffers, and far above noise.
	if grown := int64(after) - int64(before); grown > 64<<20 {
		t.Errorf("heap grew by %d bytes during the flood, want under 64 MiB", grown)
	}

	publish(t, s.JS, failing("db", "n1"), failing("db", "n1"), failing("db", "n1"))
	eventually(t, 15*time.Second, "the failing verdict after the flood", func() bool { return len(b.of(events.TypeRollbackRequested)) == 1 })
}
