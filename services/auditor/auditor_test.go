package auditor_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/storetest"
)

var eventually = natstest.Eventually

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s := storetest.Open(t, func(ctx context.Context) (*sqlite.Store, error) { return sqlite.Open(ctx, path) })
	return s
}

// start runs an auditor until the end of the test; the returned func stops it earlier.
func start(t *testing.T, js jetstream.JetStream, store auditor.Store) (stop func()) {
	t.Helper()
	a, err := auditor.New(auditor.Config{Logger: testLogger(t)}, js, store)
	if err != nil {
		t.Fatal(err)
	}
	return natstest.Serve(t, a, 10*time.Second)
}

var publish = natstest.Publish

// republish publishes e again under another Nats-Msg-Id, so JetStream's
// deduplication does not drop it: the auditor itself must store it once.
func republish(t *testing.T, js jetstream.JetStream, e events.Event) {
	t.Helper()
	m, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	m.Header.Set(nats.MsgIdHdr, e.ID()+"-again")
	if _, err := js.PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

// drained waits until the auditor's consumer has settled every message of the stream.
func drained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	natstest.Settled(t, js, auditor.Durable, 10*time.Second)
}

func count(t *testing.T, s *sqlite.Store) int {
	t.Helper()
	n, err := s.Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func upgradeEvents(upgrade string) []events.Event {
	req := events.UpgradeRequested{Release: events.Release{Name: "2025.1", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}}
	src := events.Source("test", "")
	first := events.MustNew(src, req, events.WithUpgrade(upgrade))
	return []events.Event{
		first,
		events.MustNew(events.Source("planner", ""), events.UpgradePlanned{Release: "2025.1", Changes: []events.ContainerChange{}, Waves: []events.PlannedWave{}}, events.CausedBy(first)),
		events.MustNew(events.Source("node-updater", "node1"), events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced}, events.WithUpgrade(upgrade), events.WithNode("node1"), events.CausedBy(first)),
		events.MustNew(events.Source("migrator", ""), events.MigrationStarted{Database: "/db", SnapshotID: "s"}, events.CausedBy(first)),
	}
}

func TestStoresEveryEventOnce(t *testing.T) {
	s := natstest.Start(t)
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	start(t, s.JS, store)

	evs := upgradeEvents("u1")
	heartbeat := events.MustNew(events.Source("node-updater", "node1"), events.NodeHeartbeat{Runtime: "docker"}, events.WithNode("node1"))
	publish(t, s.JS, append(evs, heartbeat)...)
	republish(t, s.JS, evs[2])
	drained(t, s.JS)

	if n := count(t, store); n != len(evs)+1 {
		t.Fatalf("stored %d events, want %d: one per id, the republished one once", n, len(evs)+1)
	}
	recs, err := store.Events(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(evs) {
		t.Fatalf("upgrade u1 has %d records, want %d", len(recs), len(evs))
	}
	byID := map[string]auditor.Record{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	node := byID[evs[2].ID()]
	if node.Type != events.TypeContainerReplaced || node.NodeID != "node1" || node.UpgradeID != "u1" ||
		node.CausationID != evs[0].ID() || node.Source != "/cutover/node-updater/node1" || node.Sequence == 0 {
		t.Errorf("stored record = %+v, want the container.replaced event's attributes", node)
	}
	// Its time is the stream's, not the producer's clock; its order the stream's.
	if st, err := s.JS.Stream(t.Context(), events.StreamName); err != nil {
		t.Fatal(err)
	} else if raw, err := st.GetMsg(t.Context(), node.Sequence); err != nil || !node.Time.Equal(raw.Time.UTC()) || raw.Header.Get(nats.MsgIdHdr) != node.ID {
		t.Errorf("record time %v, sequence %d: want the stream's timestamp of that message (%+v, %v)", node.Time, node.Sequence, raw, err)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Sequence <= recs[i-1].Sequence {
			t.Errorf("records not in stream order: %d after %d", recs[i].Sequence, recs[i-1].Sequence)
		}
	}
}

func TestCatchesUpAfterRestart(t *testing.T) {
	s := natstest.Start(t)
	path := filepath.Join(t.TempDir(), "audit.db")
	store := openStore(t, path)
	stop := start(t, s.JS, store)

	before := upgradeEvents("u1")
	publish(t, s.JS, before...)
	eventually(t, 10*time.Second, "the first events stored", func() bool { return count(t, store) == len(before) })
	stop()

	// While no auditor runs: new events, and an old one again under a new message id.
	after := upgradeEvents("u2")
	publish(t, s.JS, after...)
	republish(t, s.JS, before[1])

	start(t, s.JS, store)
	drained(t, s.JS)
	if n := count(t, store); n != len(before)+len(after) {
		t.Fatalf("stored %d events after the restart, want %d, each once", n, len(before)+len(after))
	}
	for upgrade, want := range map[string][]events.Event{"u1": before, "u2": after} {
		recs, err := store.Events(t.Context(), upgrade)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.ID]++
		}
		for _, e := range want {
			if got[e.ID()] != 1 {
				t.Errorf("upgrade %s: event %s (%s) stored %d times, want once", upgrade, e.ID(), e.Type(), got[e.ID()])
			}
		}
	}
}

func TestMalformedMessageDoesNotStopAuditor(t *testing.T) {
	s := natstest.Start(t)
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	start(t, s.JS, store)

	if _, err := s.JS.Publish(t.Context(), events.SubjectUpgradeRequested, []byte("definitely not a CloudEvent")); err != nil {
		t.Fatal(err)
	}
	valid := upgradeEvents("u1")[0]
	publish(t, s.JS, valid)
	drained(t, s.JS)

	// Stored: the valid request and the rejection of the garbage; not the garbage itself.
	if n := count(t, store); n != 2 {
		t.Fatalf("stored %d events, want 2 (the valid request and the rejection)", n)
	}
	if _, err := store.Upgrade(t.Context(), "u1"); err != nil {
		t.Fatalf("the valid request after the malformed message was not stored: %v", err)
	}
}

// TestHistoryFollowsTheStreamNotTheClientsClock: a request from a client
// whose clock ran 38 s ahead sorted after the planner's failure, so the
// dashboard and the metrics showed a failed upgrade as requested.
func TestHistoryFollowsTheStreamNotTheClientsClock(t *testing.T) {
	s := natstest.Start(t)
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	start(t, s.JS, store)
	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "2025.1", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}}, events.WithUpgrade("u9"))
	req.SetTime(time.Now().Add(38 * time.Second))
	failed := events.MustNew(events.Source("planner", ""), events.UpgradeFailed{Reason: "health", Wave: 0}, events.CausedBy(req))
	publish(t, s.JS, req, failed)
	drained(t, s.JS)
	u, err := store.Upgrade(t.Context(), "u9")
	if err != nil {
		t.Fatal(err)
	}
	if u.State != auditor.StateFailed {
		t.Errorf("state = %s, want failed: the failure came after the request in the stream", u.State)
	}
	if u.LastTime.Before(u.FirstTime) {
		t.Errorf("first %v after last %v", u.FirstTime, u.LastTime)
	}
	recs, err := store.Events(t.Context(), "u9")
	if err != nil || len(recs) != 2 || recs[0].ID != req.ID() {
		t.Errorf("history = %+v, %v; want the request first", recs, err)
	}
}

// TestRetentionPrunesSignalsKeepsUpgrade runs the auditor with a one-second
// signal retention: the heartbeats and health signals it stored leave the
// history, every event of the upgrade stays; Close stops the loop.
func TestRetentionPrunesSignalsKeepsUpgrade(t *testing.T) {
	s := natstest.Start(t)
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	a, err := auditor.New(auditor.Config{Logger: testLogger(t), SignalRetention: time.Second, PruneEvery: 100 * time.Millisecond}, s.JS, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs := upgradeEvents("u1")
	src := events.Source("node-updater", "node1")
	var chatter []events.Event
	for range 50 {
		chatter = append(chatter,
			events.MustNew(src, events.NodeHeartbeat{Runtime: "docker"}, events.WithNode("node1")),
			events.MustNew(src, events.HealthSignal{Service: "web", Node: "node1", Status: "pass"}, events.WithNode("node1"), events.WithSubject("web")))
	}
	publish(t, s.JS, append(evs, chatter...)...)
	drained(t, s.JS)
	eventually(t, 10*time.Second, "the heartbeats and health signals to be pruned", func() bool { return count(t, store) == len(evs) })
	recs, err := store.Events(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range evs {
		if events.UpgradeOf(e) == "u1" {
			want++
		}
	}
	if len(recs) != want {
		t.Errorf("upgrade u1 has %d records after pruning, want %d", len(recs), want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// noPruneStore is a store that cannot delete.
type noPruneStore struct{}

func (noPruneStore) Append(context.Context, auditor.Record) (bool, error) { return true, nil }

func TestRetentionNeedsAPruningStore(t *testing.T) {
	s := natstest.Start(t)
	if _, err := auditor.New(auditor.Config{}, s.JS, noPruneStore{}); err == nil || !strings.Contains(err.Error(), "negative signal retention") {
		t.Errorf("New with a store that cannot prune: %v; want an error saying how to keep signals for good", err)
	}
	if _, err := auditor.New(auditor.Config{SignalRetention: -1}, s.JS, noPruneStore{}); err != nil {
		t.Errorf("New keeping signals for good: %v", err)
	}
}
