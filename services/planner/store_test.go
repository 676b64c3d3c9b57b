package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

func newTestStore(t *testing.T) (*store, jetstream.KeyValue) {
	t.Helper()
	s := natstest.Start(t)
	kv, err := s.JS.KeyValue(t.Context(), events.BucketUpgrades)
	if err != nil {
		t.Fatal(err)
	}
	return &store{kv: kv, verify: true}, kv
}

// savedUpgrade saves a bigUpgrade of nodes steps (no outbox) the way the
// planner does: the record, then its steps, then the record again with
// nothing pending.
func savedUpgrade(t *testing.T, st *store, nodes int) *Upgrade {
	t.Helper()
	u := bigUpgrade(nodes)
	u.Outbox = nil
	rev, err := st.put(t.Context(), u, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.writeSteps(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	u.pending = nil
	if _, err := st.put(t.Context(), u, rev); err != nil {
		t.Fatal(err)
	}
	return u
}

// bigUpgrade returns an upgrade whose steps and outbox are far larger than a
// record may carry inline.
func bigUpgrade(nodes int) *Upgrade {
	u := &Upgrade{ID: "u-big", Phase: PhaseRunning, Nodes: map[string]*NodeProgress{}}
	for i := range nodes {
		np := &NodeProgress{Node: fmt.Sprintf("compute-%04d", i), Wave: i % 4, Status: NodePending}
		for c := range 20 {
			np.Targets = append(np.Targets, events.ContainerTarget{Container: fmt.Sprintf("svc-%02d", c), Image: fmt.Sprintf("registry.example:5000/kolla/svc-%02d:2025.1-%d", c, i)})
		}
		u.Nodes[StepKey(np.Node, np.Wave)] = np
	}
	for i := range 3 {
		u.Outbox = append(u.Outbox, json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", 300<<10))))
	}
	return u
}

func TestStoreSpillsALargeSaveToJournalKeysAndReadsItBack(t *testing.T) {
	st, kv := newTestStore(t)
	u := bigUpgrade(800)
	rev, err := st.put(t.Context(), u, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.journal) < 2 || len(u.pending) != 800 {
		t.Fatalf("journal keys %d, pending steps %d; want several keys and every step pending", len(u.journal), len(u.pending))
	}
	entry, _ := kv.Get(t.Context(), u.ID)
	if n := len(entry.Value()); n > recordInline {
		t.Errorf("record is %d bytes; want at most %d with the journal moved out", n, recordInline)
	}
	// A planner that starts now (no cache) finds the outbox and every step.
	fresh := &store{kv: kv}
	got, _, err := fresh.get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Outbox) != 3 || string(got.Outbox[2]) != string(u.Outbox[2]) || len(got.Nodes) != 800 || len(got.pending) != 800 {
		t.Fatalf("read back %d events, %d steps, %d pending", len(got.Outbox), len(got.Nodes), len(got.pending))
	}
	// Flushed: steps in their keys, the record small and without a journal.
	if err := fresh.writeSteps(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	journal := got.journal
	got.Outbox, got.pending, got.journal = nil, nil, nil
	if _, err := fresh.put(t.Context(), got, rev); err != nil {
		t.Fatal(err)
	}
	fresh.purge(t.Context(), journal)
	again, _, err := (&store{kv: kv}).get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := u.Nodes[StepKey("compute-0421", 1)]
	if np := again.Nodes[StepKey("compute-0421", 1)]; len(again.Nodes) != 800 || np == nil || !sameStep(np, want) {
		t.Fatalf("steps read from their keys: %d, compute-0421 = %+v", len(again.Nodes), np)
	}
	if len(again.journal) != 0 || len(again.pending) != 0 {
		t.Errorf("journal %v, pending %d after the flush", again.journal, len(again.pending))
	}
	for _, k := range journal {
		if _, err := kv.Get(t.Context(), k); err == nil {
			t.Errorf("journal key %s left behind", k)
		}
	}
	ids, err := fresh.ids(t.Context())
	if err != nil || len(ids) != 1 || ids[0] != u.ID {
		t.Errorf("ids = %v, %v; want only the record, not its steps", ids, err)
	}
}

func TestStoreSavesOnlyChangedSteps(t *testing.T) {
	st, _ := newTestStore(t)
	u := savedUpgrade(t, st, 50)
	got, rev, err := st.get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.edit(StepKey("compute-0007", 3)).Status = NodeSent
	if rev, err = st.put(t.Context(), got, rev); err != nil {
		t.Fatal(err)
	}
	if len(got.pending) != 1 || got.pending[StepKey("compute-0007", 3)] == nil {
		t.Errorf("pending = %d steps; want only the one that changed", len(got.pending))
	}
	// A step changed in place, bypassing edit, would be lost on the next
	// read from the keys; verify mode (on in every planner test) says so.
	again, rev, err := st.get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	again.Nodes[StepKey("compute-0008", 0)].Status = NodeFailed
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "changed without Upgrade.edit") {
			t.Errorf("recovered %v; want the in-place change reported", r)
		}
	}()
	_, _ = st.put(t.Context(), again, rev)
}

func TestStoreStepWriteNeverGoesBackInTime(t *testing.T) {
	st, kv := newTestStore(t)
	newer := &NodeProgress{Node: "n1", Wave: 0, Status: NodeCompleted, Seq: 5}
	if err := st.writeStep(t.Context(), "u1", newer); err != nil {
		t.Fatal(err)
	}
	// A deposed leader, which read the step before, writes its older save.
	stale := &store{kv: kv}
	if err := stale.writeStep(t.Context(), "u1", &NodeProgress{Node: "n1", Wave: 0, Status: NodeSent, Seq: 3}); err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), "u1.step.0.n1")
	if err != nil {
		t.Fatal(err)
	}
	var got NodeProgress
	_ = json.Unmarshal(entry.Value(), &got)
	if got.Status != NodeCompleted || got.Seq != 5 {
		t.Fatalf("step = %+v; an older save overwrote a newer one", got)
	}
	if err := stale.writeStep(t.Context(), "u1", &NodeProgress{Node: "n1", Wave: 0, Status: NodeFailed, Seq: 6}); err != nil {
		t.Fatal(err)
	}
	entry, _ = kv.Get(t.Context(), "u1.step.0.n1")
	_ = json.Unmarshal(entry.Value(), &got)
	if got.Status != NodeFailed {
		t.Fatalf("step = %+v; a newer save must win", got)
	}
}

func TestStoreReportsLostStepKeys(t *testing.T) {
	st, kv := newTestStore(t)
	u := savedUpgrade(t, st, 10)
	if err := kv.Purge(t.Context(), "u-big.step.2.compute-0002"); err != nil {
		t.Fatal(err)
	}
	_, _, err := (&store{kv: kv}).get(t.Context(), u.ID)
	if err == nil || !strings.Contains(err.Error(), "9 steps found, the record counts 10") {
		t.Fatalf("err = %v; want the lost step reported", err)
	}
}

// sameStep reports whether two steps hold the same progress (Seq aside).
func sameStep(a, b *NodeProgress) bool {
	return a.Node == b.Node && a.Wave == b.Wave && a.Status == b.Status && a.CommandID == b.CommandID &&
		a.Error == b.Error && a.SentAt.Equal(b.SentAt) && a.Drain == b.Drain && a.DrainID == b.DrainID &&
		a.DrainRequestedAt.Equal(b.DrainRequestedAt) && a.Drained == b.Drained &&
		sameSlice(a.Targets, b.Targets) && sameSlice(a.Results, b.Results)
}

// sameSlice is slices.Equal, quick for the usual case of a step copied from
// the cache: both share one backing array.
func sameSlice[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0] || slices.Equal(a, b)
}

// staleKV answers a Get of key with old, as a read that began before a
// save answers, and counts the full reads of steps (watchers).
type staleKV struct {
	jetstream.KeyValue
	key      string
	old      jetstream.KeyValueEntry
	watchers int
}

func (k *staleKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if k.old != nil && key == k.key {
		return k.old, nil
	}
	return k.KeyValue.Get(ctx, key)
}

func (k *staleKV) WatchFiltered(ctx context.Context, keys []string, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	k.watchers++
	return k.KeyValue.WatchFiltered(ctx, keys, opts...)
}

// TestStoreCacheNeverGoesBackInTime: the deadline watcher reads an upgrade
// while the consumer saves it. A read that returns the record as it was
// before the save reads the steps of that revision, but must leave the
// cache at the saved one, or the next event reads every step again.
func TestStoreCacheNeverGoesBackInTime(t *testing.T) {
	st, kv := newTestStore(t)
	u := savedUpgrade(t, st, 10)
	before, err := kv.Get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	skv := &staleKV{KeyValue: kv, key: u.ID}
	st.kv = skv
	// The consumer saves a step's change.
	cur, rev, err := st.get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	cur.edit(StepKey("compute-0001", 1)).Status = NodeSent
	if _, err := st.put(t.Context(), cur, rev); err != nil {
		t.Fatal(err)
	}
	// The watcher's read, begun before that save, ends now.
	skv.old = before
	if _, _, err := st.get(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	skv.old, skv.watchers = nil, 0
	// The next event finds the saved revision cached.
	got, _, err := st.get(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if skv.watchers != 0 {
		t.Errorf("the next read of the upgrade read every step again (%d watchers); the older read put the cache back", skv.watchers)
	}
	if s := got.Nodes[StepKey("compute-0001", 1)].Status; s != NodeSent {
		t.Errorf("step status %s after the save, want %s", s, NodeSent)
	}
}
