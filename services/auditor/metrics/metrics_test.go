package metrics_test

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/metrics"
	"github.com/cutover-dev/cutover/services/auditor/notify"
	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/storetest"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// scrape GETs url and returns each sample by its series as printed, e.g.
// `cutover_upgrades{state="completed"}`.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("parse sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type rig struct {
	nats  *natstest.Server
	store *sqlite.Store
	url   string
	stop  func() // stops the auditor and watcher earlier than the test's end
}

// startRig runs real NATS, a SQLite store, an auditor and a health watcher
// observed by a Metrics, and the dashboard with GET /metrics.
func startRig(t *testing.T, path string) *rig {
	t.Helper()
	s := natstest.Start(t)
	store := storetest.Open(t, func(ctx context.Context) (*sqlite.Store, error) { return sqlite.Open(ctx, path) })
	return startOn(t, s, store)
}

func startOn(t *testing.T, s *natstest.Server, store *sqlite.Store) *rig {
	t.Helper()
	log := testLogger(t)
	w, err := verdict.NewWatcher(verdict.WatcherConfig{Logger: log}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	closeWatcher := func() { _ = w.Close(context.Background()) }
	t.Cleanup(closeWatcher)
	m := metrics.New(metrics.Config{JetStream: s.JS, Verdicts: w.Stats, Logger: log})
	if err := m.Seed(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	a, err := auditor.New(auditor.Config{Logger: log, Observers: []auditor.Observer{m}}, s.JS, store)
	if err != nil {
		t.Fatal(err)
	}
	closeAuditor := natstest.Serve(t, a, 10*time.Second)
	srv := httptest.NewServer(auditor.NewDashboard(store, nil, log, map[string]http.Handler{"GET /metrics": m.Handler()}))
	t.Cleanup(srv.Close)
	return &rig{nats: s, store: store, url: srv.URL + "/metrics", stop: func() { closeAuditor(); closeWatcher() }}
}

var publish = natstest.Publish

// drained waits until the auditor has settled every message of the stream.
func drained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	natstest.Settled(t, js, auditor.Durable, 15*time.Second)
}

// history publishes two upgrades: u1 completes after replacing two
// containers (one of them republished under a new message id), keeping
// one and reverting one; u2 fails and is rolled back, and the rollback fails.
func history(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	src := events.Source("test", "")
	req := func(id string) events.Event {
		return events.MustNew(src, events.UpgradeRequested{Release: events.Release{Name: "2025.1",
			Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}}, events.WithUpgrade(id))
	}
	r1, r2 := req("u1"), req("u2")
	node := events.Source("node-updater", "n1")
	replaced := events.MustNew(node, events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced,
		FromImage: "web:v1", ToImage: "web:v2", InterruptionMs: 300}, events.CausedBy(r1), events.WithNode("n1"))
	publish(t, js,
		r1,
		events.MustNew(src, events.UpgradeStarted{Waves: 1}, events.CausedBy(r1)),
		replaced,
		events.MustNew(node, events.ContainerReplaced{Container: "web-2", Result: events.ResultReplaced,
			FromImage: "web:v1", ToImage: "web:v2", InterruptionMs: 7000}, events.CausedBy(r1), events.WithNode("n1")),
		events.MustNew(node, events.ContainerReplaced{Container: "web-3", Result: events.ResultUnchanged,
			FromImage: "web:v2", ToImage: "web:v2"}, events.CausedBy(r1), events.WithNode("n1")),
		events.MustNew(node, events.ContainerReverted{Container: "web-4", Step: "health", Reason: "unhealthy",
			Image: "web:v2"}, events.CausedBy(r1), events.WithNode("n1")),
		events.MustNew(src, events.UpgradeCompleted{Release: "2025.1", Replaced: 2, Unchanged: 1}, events.CausedBy(r1)),
		r2,
		events.MustNew(src, events.UpgradeFailed{Reason: "node n2 failed", Wave: 0, Node: "n2"}, events.CausedBy(r2)),
		events.MustNew(src, events.RollbackRequested{Reason: "upgrade failed", RequestedBy: "test"}, events.CausedBy(r2)),
		events.MustNew(src, events.RollbackCompleted{Result: "failed", Nodes: []string{"n2"}, Reason: "n2 unreachable"}, events.CausedBy(r2)),
		// A signal for a service nobody follows: the watcher counts it as unknown.
		events.MustNew(src, events.HealthSignal{Service: "nobody", Node: "n1", Status: "fail"}, events.WithSubject("nobody"), events.WithNode("n1")),
	)
	// The same event under another message id: stored, and counted, once.
	m, err := events.Encode(replaced)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, replaced.ID()+"-again")
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	// Garbage: refused by the auditor's consumer, which publishes (and
	// stores) a dev.cutover.event.rejected event about it.
	if _, err := js.Publish(t.Context(), events.SubjectUpgradeRequested, []byte("not a CloudEvent")); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsFromStoredEvents(t *testing.T) {
	r := startRig(t, filepath.Join(t.TempDir(), "audit.db"))
	// A durable consumer that never reads: its lag is every message.
	if _, err := r.nats.JS.CreateOrUpdateConsumer(t.Context(), events.StreamName, jetstream.ConsumerConfig{
		Durable: "laggard", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	history(t, r.nats.JS)
	drained(t, r.nats.JS)
	natstest.Eventually(t, 15*time.Second, "the watcher to count the unknown signal and the garbage", func() bool {
		got := scrape(t, r.url)
		return got[`cutover_verdict_signals_total{kind="unknown"}`] == 1 && got[`cutover_verdict_signals_total{kind="garbage"}`] == 1
	})
	info, err := r.nats.JS.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	msgs := float64(info.CachedInfo().State.Msgs)

	got := scrape(t, r.url)
	tests := []struct {
		series string
		want   float64
	}{
		{`cutover_upgrades{state="completed"}`, 1},
		{`cutover_upgrades{state="rollback-failed"}`, 1},
		{`cutover_upgrades{state="running"}`, 0},
		{`cutover_upgrades{state="requested"}`, 0},
		{`cutover_container_replacements_total{result="replaced"}`, 2},
		{`cutover_container_replacements_total{result="unchanged"}`, 1},
		{`cutover_container_replacements_total{result="reverted"}`, 1},
		{`cutover_interruption_seconds_count`, 2},
		{`cutover_interruption_seconds_sum`, 7.3},
		{`cutover_interruption_seconds_bucket{le="0.5"}`, 1},
		{`cutover_interruption_seconds_bucket{le="5"}`, 1},
		{`cutover_interruption_seconds_bucket{le="10"}`, 2},
		{`cutover_rollbacks_total{result="requested"}`, 1},
		{`cutover_rollbacks_total{result="failed"}`, 1},
		{`cutover_rollbacks_total{result="completed"}`, 0},
		{`cutover_events_total{type="dev.cutover.container.replaced"}`, 3},
		{`cutover_events_total{type="dev.cutover.upgrade.requested"}`, 2},
		{`cutover_events_total{type="dev.cutover.event.rejected"}`, 1},
		{`cutover_rejected_events_total`, 1},
		{`cutover_consumer_pending_messages{consumer="auditor"}`, 0},
		{`cutover_consumer_ack_pending_messages{consumer="auditor"}`, 0},
		{`cutover_consumer_pending_messages{consumer="laggard"}`, msgs},
		{`cutover_consumer_scrape_errors_total`, 0},
		{`cutover_verdict_signals_total{kind="unknown"}`, 1},
		{`cutover_verdict_signals_total{kind="garbage"}`, 1},
		{`cutover_verdict_windows`, 0},
	}
	for _, tt := range tests {
		v, ok := got[tt.series]
		if !ok {
			t.Errorf("%s missing from /metrics", tt.series)
			continue
		}
		if v < tt.want-1e-9 || v > tt.want+1e-9 {
			t.Errorf("%s = %v, want %v", tt.series, v, tt.want)
		}
	}
	if msgs < 14 {
		t.Errorf("stream holds %v messages, want at least the 14 published", msgs)
	}
}

// TestUpgradesGaugeSurvivesRestart checks that a Metrics seeded from the
// history of a previous run reports the same upgrades by state, and that
// events arriving after the restart move them.
func TestUpgradesGaugeSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	r := startRig(t, path)
	history(t, r.nats.JS)
	drained(t, r.nats.JS)

	r.stop()
	second := startOn(t, r.nats, r.store) // same store, fresh Metrics seeded from it
	got := scrape(t, second.url)
	if got[`cutover_upgrades{state="completed"}`] != 1 || got[`cutover_upgrades{state="rollback-failed"}`] != 1 {
		t.Fatalf("after a restart: completed=%v rollback failed=%v, want 1 and 1 (seeded from the history)",
			got[`cutover_upgrades{state="completed"}`], got[`cutover_upgrades{state="rollback-failed"}`])
	}
	if got[`cutover_events_total{type="dev.cutover.container.replaced"}`] != 0 {
		t.Errorf("a restarted auditor counted stored events again")
	}
	u3 := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "2025.2",
		Services: map[string]events.ServiceRelease{"web": {Image: "web:v3"}}}}, events.WithUpgrade("u3"))
	publish(t, r.nats.JS, u3)
	natstest.Eventually(t, 15*time.Second, "u3 counted as requested", func() bool {
		return scrape(t, second.url)[`cutover_upgrades{state="requested"}`] == 1
	})
}

// TestLagScrapeBounded checks that a scrape against an unreachable NATS
// returns within its timeout and counts an error instead of hanging.
func TestLagScrapeBounded(t *testing.T) {
	s := natstest.Start(t)
	m := metrics.New(metrics.Config{JetStream: s.JS, ScrapeTimeout: 300 * time.Millisecond, Logger: testLogger(t)})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	s.Server.Shutdown()
	s.Server.WaitForShutdown()

	done := make(chan map[string]float64, 1)
	go func() { done <- scrape(t, srv.URL) }()
	select {
	case got := <-done:
		if got[`cutover_consumer_scrape_errors_total`] != 1 {
			t.Errorf("cutover_consumer_scrape_errors_total = %v, want 1", got[`cutover_consumer_scrape_errors_total`])
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scrape did not return with NATS down")
	}
}

func TestWebhookCounters(t *testing.T) {
	m := metrics.New(metrics.Config{Webhooks: func() notify.Stats {
		return notify.Stats{Delivered: 5, Retries: 3, GaveUp: 1, Rejected: 2, Dropped: 7, Queued: 4}
	}})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	got := scrape(t, srv.URL)
	for series, want := range map[string]float64{
		`cutover_webhook_events_total{result="delivered"}`: 5,
		`cutover_webhook_events_total{result="gave_up"}`:   1,
		`cutover_webhook_events_total{result="rejected"}`:  2,
		`cutover_webhook_events_total{result="dropped"}`:   7,
		`cutover_webhook_retries_total`:                    3,
		`cutover_webhook_queued_events`:                    4,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}
