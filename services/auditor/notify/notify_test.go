package notify_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/notify"
	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/storetest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// hook is a webhook endpoint answering with the statuses in order (the
// last one forever) and recording what it received.
type hook struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	types    []string
	release  chan struct{} // when set, each request waits for it
	started  chan struct{} // receives one value per request, when set
	failFor  string        // when set, a body containing it gets a 500
	once     sync.Once
}

// unblock lets every waiting and future request through.
func (h *hook) unblock() { h.once.Do(func() { close(h.release) }) }

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if h.started != nil {
		select {
		case h.started <- struct{}{}:
		default:
		}
	}
	if h.release != nil {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, string(body))
	h.types = append(h.types, r.Header.Get("Content-Type"))
	status := http.StatusOK
	if h.failFor != "" && strings.Contains(string(body), h.failFor) {
		status = http.StatusInternalServerError
	} else if len(h.statuses) > 0 {
		status = h.statuses[0]
		if len(h.statuses) > 1 {
			h.statuses = h.statuses[1:]
		}
	}
	w.WriteHeader(status)
}

func (h *hook) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies...)
}

func serve(t *testing.T, h *hook) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if h.release != nil {
		t.Cleanup(h.unblock) // runs before srv.Close: handlers return
	}
	return srv.URL
}

func open(t *testing.T, cfg notify.Config) *notify.Notifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	n, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

func record(t *testing.T, data events.Data, opts ...events.Option) auditor.Record {
	t.Helper()
	r, err := auditor.RecordOf(events.MustNew(events.Source("test", ""), data, opts...), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func completed(t *testing.T, upgrade string) auditor.Record {
	return record(t, events.UpgradeCompleted{Release: "2025.1"}, events.WithUpgrade(upgrade))
}

func TestDeliversChosenEventsInOrder(t *testing.T) {
	a, b := &hook{}, &hook{}
	n := open(t, notify.Config{URLs: []string{serve(t, a), serve(t, b)}})
	want := []auditor.Record{
		completed(t, "u1"),
		record(t, events.UpgradeFailed{Reason: "x", Wave: 1}, events.WithUpgrade("u2")),
		record(t, events.HealthVerdict{Service: "web", Verdict: "failing", Evidence: []string{}}, events.WithUpgrade("u2")),
	}
	n.Observe(want[0])
	n.Observe(record(t, events.NodeHeartbeat{Runtime: "docker"}, events.WithNode("n1")))                                           // not chosen
	n.Observe(record(t, events.HealthVerdict{Service: "web", Verdict: "healthy", Evidence: []string{}}, events.WithUpgrade("u1"))) // healthy: not chosen
	n.Observe(want[1])
	n.Observe(want[2])

	for name, h := range map[string]*hook{"first": a, "second": b} {
		natstest.Eventually(t, 10*time.Second, name+" webhook to receive 3 events", func() bool { return len(h.received()) >= 3 })
		got := h.received()
		if len(got) != len(want) {
			t.Fatalf("%s webhook received %d events, want %d", name, len(got), len(want))
		}
		for i, r := range want {
			if got[i] != string(r.Event) {
				t.Errorf("%s webhook event %d = %s, want %s (in stored order)", name, i, got[i], r.Event)
			}
			if h.types[i] != notify.ContentType {
				t.Errorf("%s webhook Content-Type = %q, want %q", name, h.types[i], notify.ContentType)
			}
		}
	}
	natstest.Eventually(t, 5*time.Second, "6 deliveries counted", func() bool { return n.Stats().Delivered == 6 })
}

func TestRetriesAndGivesUp(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		want     notify.Stats
		requests int
	}{
		{"500s then success", []int{500, 503, 200}, notify.Stats{Delivered: 1, Retries: 2}, 3},
		{"429 is retried", []int{429, 200}, notify.Stats{Delivered: 1, Retries: 1}, 2},
		{"always failing gives up", []int{502}, notify.Stats{GaveUp: 1}, -1},
		{"400 is not retried", []int{400}, notify.Stats{Rejected: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &hook{statuses: tt.statuses}
			n := open(t, notify.Config{URLs: []string{serve(t, h)},
				InitialBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, GiveUpAfter: 300 * time.Millisecond})
			n.Observe(completed(t, "u1"))
			natstest.Eventually(t, 10*time.Second, "the event settled", func() bool {
				s := n.Stats()
				return s.Delivered+s.GaveUp+s.Rejected == 1
			})
			got := n.Stats()
			got.Retries = min(got.Retries, tt.want.Retries) // giving up retries an unknown number of times
			if tt.want.GaveUp == 1 && n.Stats().Retries < 2 {
				t.Errorf("gave up after %d retries, want several within the bound", n.Stats().Retries)
			}
			if got != tt.want {
				t.Errorf("stats = %+v, want %+v", got, tt.want)
			}
			if tt.requests >= 0 && len(h.received()) != tt.requests {
				t.Errorf("webhook received %d requests, want %d", len(h.received()), tt.requests)
			}
		})
	}
}

// TestGiveUpKeepsOrder checks that after giving up on one event the next
// one of the same URL is delivered.
func TestGiveUpKeepsOrder(t *testing.T) {
	first, second := completed(t, "u1"), completed(t, "u2")
	h := &hook{failFor: first.ID}
	n := open(t, notify.Config{URLs: []string{serve(t, h)},
		InitialBackoff: 5 * time.Millisecond, MaxBackoff: 5 * time.Millisecond, GiveUpAfter: 50 * time.Millisecond})
	n.Observe(first)
	n.Observe(second)
	natstest.Eventually(t, 10*time.Second, "both events settled", func() bool {
		s := n.Stats()
		return s.Delivered+s.GaveUp == 2
	})
	if st := n.Stats(); st.GaveUp != 1 || st.Delivered != 1 {
		t.Errorf("stats = %+v, want the first given up and the second delivered", st)
	}
	got := h.received()
	if got[0] != string(first.Event) || got[len(got)-1] != string(second.Event) {
		t.Errorf("requests did not carry the first event first and the second last")
	}
	for _, b := range got[:len(got)-1] {
		if b != string(first.Event) {
			t.Errorf("the second event was posted while the first was still being retried")
		}
	}
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	h := &hook{release: make(chan struct{}), started: make(chan struct{}, 1)}
	n := open(t, notify.Config{URLs: []string{serve(t, h)}, QueueSize: 2})
	recs := []auditor.Record{completed(t, "u1"), completed(t, "u2"), completed(t, "u3"), completed(t, "u4"), completed(t, "u5")}
	n.Observe(recs[0])
	select { // the first event is in flight: the queue is empty again
	case <-h.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook never received the first event")
	}
	for _, r := range recs[1:] {
		n.Observe(r)
	}
	if s := n.Stats(); s.Dropped != 2 || s.Queued != 2 {
		t.Fatalf("stats = %+v, want 2 dropped (u2, u3) and 2 queued (u4, u5)", s)
	}
	h.unblock()
	natstest.Eventually(t, 10*time.Second, "three deliveries", func() bool { return n.Stats().Delivered == 3 })
	got := h.received()
	for i, r := range []auditor.Record{recs[0], recs[3], recs[4]} {
		if got[i] != string(r.Event) {
			t.Errorf("delivery %d = %s, want %s (newest kept, in order)", i, got[i], r.UpgradeID)
		}
	}
}

func TestParseTypes(t *testing.T) {
	verdict := func(v string) auditor.Record {
		return record(t, events.HealthVerdict{Service: "web", Verdict: v, Evidence: []string{}}, events.WithUpgrade("u"))
	}
	tests := []struct {
		name    string
		list    []string
		chosen  []auditor.Record
		ignored []auditor.Record
		err     string
	}{
		{name: "defaults", chosen: []auditor.Record{completed(t, "u"), verdict("failing"),
			record(t, events.RollbackRequested{Reason: "r"}, events.WithUpgrade("u"))},
			ignored: []auditor.Record{verdict("healthy"), verdict("inconclusive"), record(t, events.UpgradeStarted{Waves: 1}, events.WithUpgrade("u"))}},
		{name: "every verdict", list: []string{events.TypeHealthVerdict},
			chosen: []auditor.Record{verdict("healthy"), verdict("failing")}, ignored: []auditor.Record{completed(t, "u")}},
		{name: "inconclusive verdicts", list: []string{events.TypeHealthVerdict + ":inconclusive"},
			chosen: []auditor.Record{verdict("inconclusive")}, ignored: []auditor.Record{verdict("failing")}},
		{name: "unknown type", list: []string{"dev.cutover.upgrade.exploded"}, err: "not an event type"},
		{name: "suffix on another type", list: []string{events.TypeUpgradeFailed + ":failing"}, err: "only dev.cutover.health.verdict"},
		{name: "bad verdict", list: []string{events.TypeHealthVerdict + ":sad"}, err: "healthy, failing or inconclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := notify.ParseTypes(tt.list)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseTypes(%q) error = %v, want one containing %q", tt.list, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.chosen {
				if !f(r) {
					t.Errorf("%s not chosen, want chosen", r.Type)
				}
			}
			for _, r := range tt.ignored {
				if f(r) {
					t.Errorf("%s chosen, want ignored", r.Type)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  notify.Config
		want []string
	}{
		{"no URL", notify.Config{}, []string{"no URL"}},
		{"secret path not shown", notify.Config{URLs: []string{"https://hooks.example/services/T0/B0/SECRET", "https://hooks.example/services/T0/B0/SECRET"}},
			[]string{"webhook URL 2 (https://hooks.example/…): given twice"}},
		{"every problem at once", notify.Config{URLs: []string{"ftp://x", "localhost:80", "http://a", "http://a"}},
			[]string{"webhook URL 1 (ftp://x)", "webhook URL 2", "webhook URL 4 (http://a): given twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.New(tt.cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q shows a webhook's secret path", err)
			}
		})
	}
}

// TestSlowEndpointDoesNotBlockStorage runs the auditor over real NATS with a
// notifier whose only webhook never answers: every event is still stored,
// and the notifier's queue sheds the overflow.
func TestSlowEndpointDoesNotBlockStorage(t *testing.T) {
	s := natstest.Start(t)
	store := storetest.Open(t, func(ctx context.Context) (*sqlite.Store, error) {
		return sqlite.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	})
	h := &hook{release: make(chan struct{})}
	n := open(t, notify.Config{URLs: []string{serve(t, h)}, QueueSize: 4, Timeout: time.Hour})
	a, err := auditor.New(auditor.Config{Logger: testLogger(t), Observers: []auditor.Observer{n}}, s.JS, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })

	const total = 50
	pub := events.NewPublisher(s.JS)
	for i := range total {
		e := events.MustNew(events.Source("test", ""), events.UpgradeCompleted{Release: "r"}, events.WithUpgrade("u"+string(rune('a'+i%26))+strings.Repeat("x", i/26)))
		if err := pub.Publish(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, 20*time.Second, "every event stored while the webhook hangs", func() bool {
		c, err := store.Count(t.Context())
		return err == nil && c == total
	})
	if st := n.Stats(); st.Dropped < total-4-1 || st.Delivered != 0 {
		t.Errorf("stats = %+v, want at least %d dropped and none delivered", st, total-5)
	}
}
