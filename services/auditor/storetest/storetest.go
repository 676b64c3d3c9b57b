package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
)

// Store is what the suite tests: the auditor's three interfaces, and Count.
type Store interface {
	auditor.Store
	auditor.History
	auditor.Pruner
	// Count returns the number of stored events.
	Count(ctx context.Context) (int, error)
}

// Opener returns a new, empty store that lives until the end of the test
// (the opener registers its cleanup).
type Opener func(t *testing.T) Store

// Run runs every conformance test against the stores open returns, each
// test on a store of its own.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"AppendStoresEachIDOnce", testAppendStoresEachIDOnce},
		{"UpgradeSummaries", testUpgradeSummaries},
		{"EventsOrderedByTimeThenID", testEventsOrderedByTimeThenID},
		{"StreamOrderOverEventTime", testStreamOrderOverEventTime},
		{"UpgradeNotFound", testUpgradeNotFound},
		{"SignalFloodPrunedUpgradeKept", testSignalFloodPrunedUpgradeKept},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func record(t *testing.T, upgrade string, d events.Data, at time.Time) auditor.Record {
	t.Helper()
	var opts []events.Option
	if upgrade != "" {
		opts = append(opts, events.WithUpgrade(upgrade))
	}
	return recordWith(t, d, at, opts...)
}

func appendAll(t *testing.T, s Store, recs ...auditor.Record) {
	t.Helper()
	for _, r := range recs {
		if _, err := s.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
}

var request = events.UpgradeRequested{Release: events.Release{Name: "2025.1", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}}

func testAppendStoresEachIDOnce(t *testing.T, open Opener) {
	s := open(t)
	r := record(t, "u1", request, t0)
	for i, want := range []bool{true, false, false} {
		got, err := s.Append(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("append #%d inserted = %v, want %v", i+1, got, want)
		}
	}
	if n, err := s.Count(t.Context()); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
}

func testUpgradeSummaries(t *testing.T, open Opener) {
	type ev struct {
		d  events.Data
		at time.Duration // after t0
	}
	cases := []struct {
		name    string
		events  []ev
		state   auditor.State
		release string
	}{
		{"requested", []ev{{request, 0}}, auditor.StateRequested, "2025.1"},
		{"planned", []ev{{request, 0}, {events.UpgradePlanned{Release: "2025.1"}, time.Second}}, auditor.StatePlanned, "2025.1"},
		{"running after start", []ev{{request, 0}, {events.UpgradePlanned{}, 1 * time.Second}, {events.UpgradeStarted{Waves: 2}, 2 * time.Second}}, auditor.StateRunning, "2025.1"},
		{"running in a wave, node events ignored", []ev{
			{request, 0}, {events.WaveStarted{Wave: 0}, 2 * time.Second},
			{events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: "web-1", Image: "web:v2"}}}, 3 * time.Second},
			{events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced}, 4 * time.Second},
		}, auditor.StateRunning, "2025.1"},
		{"completed", []ev{{request, 0}, {events.WaveCompleted{}, 3 * time.Second}, {events.UpgradeCompleted{Release: "2025.1"}, 4 * time.Second}}, auditor.StateCompleted, "2025.1"},
		{"failed", []ev{{request, 0}, {events.UpgradeFailed{Reason: "health", Wave: 0}, time.Second}}, auditor.StateFailed, "2025.1"},
		{"paused", []ev{{request, 0}, {events.UpgradePaused{Reason: "operator"}, time.Second}}, auditor.StatePaused, "2025.1"},
		{"aborted", []ev{{request, 0}, {events.UpgradeAborted{Reason: "operator"}, time.Second}}, auditor.StateAborted, "2025.1"},
		{"rolled-back", []ev{{request, 0}, {events.UpgradeFailed{Reason: "health"}, time.Second}, {events.RollbackCompleted{Result: "completed"}, 2 * time.Second}}, auditor.StateRolledBack, "2025.1"},
		{"rollback failed", []ev{{request, 0}, {events.RollbackCompleted{Result: "failed"}, 2 * time.Second}}, auditor.StateRollbackFailed, "2025.1"},
		{"newest by event time, not arrival", []ev{{events.UpgradeCompleted{}, 5 * time.Second}, {request, 0}, {events.UpgradeStarted{}, time.Second}}, auditor.StateCompleted, "2025.1"},
		{"release from the plan without a request", []ev{{events.UpgradePlanned{Release: "demo-v2"}, 0}}, auditor.StatePlanned, "demo-v2"},
		{"only migration events", []ev{{events.MigrationStarted{Database: "/db"}, 0}}, auditor.StateUnknown, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			// Another upgrade and an event without upgrade must not leak into the summary.
			appendAll(t, s,
				record(t, "other", events.UpgradeCompleted{}, t0.Add(-time.Hour)),
				record(t, "", events.NodeHeartbeat{Runtime: "docker"}, t0))
			for _, e := range c.events {
				appendAll(t, s, record(t, "u1", e.d, t0.Add(e.at)))
			}
			got, err := s.Upgrade(t.Context(), "u1")
			if err != nil {
				t.Fatal(err)
			}
			var last time.Duration
			for _, e := range c.events {
				last = max(last, e.at)
			}
			want := auditor.UpgradeSummary{ID: "u1", Release: c.release, State: c.state, FirstTime: t0, LastTime: t0.Add(last), Events: len(c.events)}
			if got != want {
				t.Errorf("Upgrade(u1) =\n %+v\nwant\n %+v", got, want)
			}
			all, err := s.Upgrades(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 2 || all[0] != want || all[1].ID != "other" {
				t.Errorf("Upgrades() = %+v, want u1 (newest) then other", all)
			}
		})
	}
}

func testEventsOrderedByTimeThenID(t *testing.T, open Opener) {
	s := open(t)
	a := record(t, "u1", request, t0.Add(time.Second))
	b := record(t, "u1", events.UpgradePlanned{}, t0.Add(2*time.Second))
	c := record(t, "u1", events.UpgradeStarted{}, t0.Add(2*time.Second)) // same time as b, later UUIDv7
	first := record(t, "u1", events.UpgradeStarted{}, t0)
	appendAll(t, s, c, b, a, record(t, "u2", request, t0), first)
	got, err := s.Events(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	want := []string{first.ID, a.ID, b.ID, c.ID}
	if len(ids) != len(want) {
		t.Fatalf("Events(u1) ids = %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("Events(u1) ids = %v, want %v", ids, want)
		}
	}
	// The stored record is the one appended, raw CloudEvent included.
	r := got[1]
	if r.Type != events.TypeUpgradeRequested || r.UpgradeID != "u1" || r.Subject != "u1" || !r.Time.Equal(a.Time) || !r.StoredAt.Equal(a.StoredAt) {
		t.Errorf("record = %+v, want the appended upgrade request", r)
	}
	var ce map[string]any
	if err := json.Unmarshal(r.Event, &ce); err != nil || ce["id"] != a.ID || ce["specversion"] != "1.0" {
		t.Errorf("raw event = %s (%v), want the CloudEvent %s", r.Event, err, a.ID)
	}
}

// testStreamOrderOverEventTime: a request from a client whose clock runs
// 38 s ahead made a failed upgrade show as requested, its newest event by
// time. With stream sequences, the stream's order decides history and state.
func testStreamOrderOverEventTime(t *testing.T, open Opener) {
	s := open(t)
	req := record(t, "u1", request, t0.Add(38*time.Second)).InStream(10, time.Time{})
	failed := record(t, "u1", events.UpgradeFailed{Reason: "health"}, t0.Add(time.Second)).InStream(12, time.Time{})
	planned := record(t, "u1", events.UpgradePlanned{Release: "2025.1"}, t0).InStream(11, time.Time{})
	appendAll(t, s, failed, req, planned)
	got, err := s.Events(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != req.ID || got[1].ID != planned.ID || got[2].ID != failed.ID || got[2].Sequence != 12 {
		t.Errorf("Events(u1) = %+v, want request, plan, failure in stream order", got)
	}
	u, err := s.Upgrade(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if u.State != auditor.StateFailed || u.Release != "2025.1" {
		t.Errorf("summary = %+v, want failed (the newest in the stream) of release 2025.1", u)
	}
}

func testUpgradeNotFound(t *testing.T, open Opener) {
	s := open(t)
	appendAll(t, s, record(t, "", events.NodeHeartbeat{}, t0))
	for _, id := range []string{"nope", ""} {
		if _, err := s.Upgrade(t.Context(), id); !errors.Is(err, auditor.ErrUpgradeNotFound) {
			t.Errorf("Upgrade(%q) err = %v, want ErrUpgradeNotFound", id, err)
		}
	}
	if recs, err := s.Events(t.Context(), "nope"); err != nil || len(recs) != 0 {
		t.Errorf("Events(nope) = %v, %v; want none", recs, err)
	}
	if all, err := s.Upgrades(t.Context()); err != nil || len(all) != 0 {
		t.Errorf("Upgrades() = %v, %v; want none (the heartbeat has no upgrade)", all, err)
	}
}

// testSignalFloodPrunedUpgradeKept: 10,000 heartbeats and health signals,
// half older than the retention, around an upgrade as old as the oldest of
// them. Pruning deletes the old half, batch by batch, and no event of the
// upgrade: not its node events, nor a health signal that carries its id.
func testSignalFloodPrunedUpgradeKept(t *testing.T, open Opener) {
	s := open(t)
	cutoff := t0.Add(time.Hour)
	nodeOpts := []events.Option{events.WithUpgrade("u1"), events.WithNode("n1")}
	upgrade := []auditor.Record{
		record(t, "u1", request, t0),
		record(t, "u1", events.UpgradeStarted{Waves: 1}, t0.Add(time.Second)),
		recordWith(t, events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced}, t0.Add(2*time.Second), nodeOpts...),
		recordWith(t, events.HealthSignal{Service: "web", Node: "n1", Status: "pass"}, t0.Add(3*time.Second), append(nodeOpts, events.WithSubject("web"))...),
		record(t, "u1", events.UpgradeCompleted{Release: "2025.1"}, t0.Add(4*time.Second)),
	}
	appendAll(t, s, upgrade...)
	const flood = 10_000
	for i := range flood {
		at := t0.Add(time.Duration(i) * time.Hour * 2 / flood) // t0 .. t0+2h: half before the cutoff
		var d events.Data = events.NodeHeartbeat{Runtime: "docker", Containers: 20}
		opts := []events.Option{events.WithNode("n1")}
		if i%2 == 1 {
			d = events.HealthSignal{Service: "web", Node: "n1", Status: "fail"}
			opts = append(opts, events.WithSubject("web"))
		}
		appendAll(t, s, recordWith(t, d, at, opts...))
	}
	total := 0
	for batch := 0; ; batch++ {
		n, err := s.PruneSignals(t.Context(), cutoff, 3000)
		if err != nil {
			t.Fatal(err)
		}
		if batch == 0 && n != 3000 {
			t.Fatalf("first prune deleted %d, want the batch limit 3000", n)
		}
		total += n
		if n < 3000 {
			break
		}
	}
	if total != flood/2 {
		t.Errorf("pruned %d signals, want the %d older than the retention", total, flood/2)
	}
	if n, err := s.Count(t.Context()); err != nil || n != len(upgrade)+flood/2 {
		t.Errorf("Count = %d, %v; want %d (the upgrade's %d events and the newer half of the flood)", n, err, len(upgrade)+flood/2, len(upgrade))
	}
	got, err := s.Events(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(upgrade) {
		t.Fatalf("upgrade u1 has %d events after the prune, want its %d", len(got), len(upgrade))
	}
	for i, r := range got {
		if r.ID != upgrade[i].ID {
			t.Errorf("event %d of u1 is %s (%s), want %s (%s)", i, r.ID, r.Type, upgrade[i].ID, upgrade[i].Type)
		}
	}
	if u, err := s.Upgrade(t.Context(), "u1"); err != nil || u.State != auditor.StateCompleted || u.Events != len(upgrade) {
		t.Errorf("Upgrade(u1) = %+v, %v; want completed with %d events", u, err, len(upgrade))
	}
}

// recordWith is the record of an event with any options, at the given time.
func recordWith(t *testing.T, d events.Data, at time.Time, opts ...events.Option) auditor.Record {
	t.Helper()
	e := events.MustNew(events.Source("test", ""), d, opts...)
	e.SetTime(at)
	r, err := auditor.RecordOf(e, at.Add(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Sample returns the record of an upgrade request, for store tests outside
// the suite.
func Sample(t *testing.T) auditor.Record {
	t.Helper()
	return record(t, "u1", request, t0)
}

// Open opens a store with open and closes it at the end of the test; an
// error opening or closing it fails the test.
func Open[S interface{ Close() error }](t *testing.T, open func(context.Context) (S, error)) S {
	t.Helper()
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// ClosingStore is a Store its opener hands over: the test closes it.
type ClosingStore interface {
	Store
	Close() error
}

// ReopenKeepsHistory opens the same database twice through open: the
// second open finds the schema at the latest version and the event the
// first one stored.
func ReopenKeepsHistory(t *testing.T, open func(context.Context) (ClosingStore, error)) {
	t.Helper()
	s, err := open(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(t.Context(), Sample(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = Open(t, open) // the schema is already at the latest version
	if n, err := s.Count(t.Context()); err != nil || n != 1 {
		t.Fatalf("Count after reopen = %d, %v; want 1", n, err)
	}
}
