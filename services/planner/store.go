package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/cutover-dev/cutover/events"
)

// The store keeps each upgrade in the cutover-upgrades bucket under several
// keys, so that what a node's answer rewrites does not grow with the fleet:
//
//	<id>                      the record: phase, wave, rollback, migrations, outbox; no steps
//	<id>.step.<wave>.<node>   one step (NodeProgress)
//	<id>.journal.<random>     part of an outbox or of changed steps too large for the record
//
// The record is the commit point. A save writes it with compare-and-swap,
// carrying the events just decided (the outbox) and the steps just changed
// (pending). flush then writes the pending steps to their keys, publishes
// the events and saves the record without them. A crash in between leaves a
// record whose outbox and pending steps the next reader applies again; both
// are idempotent (steps carry the save that wrote them, events their ids).
const (
	// recordInline is the largest record that carries its outbox and
	// pending steps inline; a larger one moves them to journal keys.
	recordInline = 256 << 10
	// journalPartSize is the most a journal key holds (one larger event
	// goes alone), under NATS's default 1 MB max_payload.
	journalPartSize = 512 << 10
)

// record is the value of an upgrade's own key.
type record struct {
	Upgrade
	// Seq numbers the saves of the upgrade.
	Seq uint64 `json:"seq"`
	// Steps counts the step keys, checked when they are read back.
	Steps int `json:"steps"`
	// Pending are steps changed by this save and maybe not yet written to their keys.
	Pending []*NodeProgress `json:"pending,omitempty"`
	// Journal names the keys holding the outbox and pending steps when they
	// do not fit in the record, in order.
	Journal []string `json:"journal,omitempty"`
	// LegacyTargets is the step targets of a record written before steps
	// had their own keys; it is read, never written.
	LegacyTargets map[string][]events.ContainerTarget `json:"targets,omitempty"`
}

// journalPart is the value of a journal key.
type journalPart struct {
	Outbox  []json.RawMessage `json:"outbox,omitempty"`
	Pending []*NodeProgress   `json:"pending,omitempty"`
}

// store keeps Upgrades in the cutover-upgrades bucket.
type store struct {
	kv jetstream.KeyValue

	// verify makes every save check that no step changed without
	// Upgrade.edit (tests set it; it costs a JSON encoding of every step).
	verify bool

	mu sync.Mutex
	// cache holds the steps of upgrades this planner read or saved, at the
	// record revision they belong to: a read that finds the record at that
	// revision need not read every step again.
	cache map[string]*cached
}

type cached struct {
	rev uint64
	// nodes are shared with the upgrades read from the cache, never
	// changed in place (see Upgrade.edit).
	nodes map[string]*NodeProgress
	// shadow holds each step's JSON when verify is set.
	shadow map[string]string
	// stepRev is each step key's revision as last read or written, for
	// compare-and-swap on the step.
	stepRev map[string]uint64
}

var errNoUpgrade = errors.New("no such upgrade")

// ErrNoUpgrade is returned (wrapped) by LoadUpgrade for an id the planner
// does not know.
var ErrNoUpgrade = errNoUpgrade

func stepKVKey(id string, np *NodeProgress) string {
	return id + ".step." + strconv.Itoa(np.Wave) + "." + np.Node
}

func (s *store) get(ctx context.Context, id string) (*Upgrade, uint64, error) {
	entry, err := s.kv.Get(ctx, id)
	if events.IsNotFound(err) {
		return nil, 0, fmt.Errorf("get upgrade %s: %w", id, errNoUpgrade)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get upgrade %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(entry.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("decode upgrade %s: %w", id, err)
	}
	if err := s.readJournal(ctx, &r); err != nil {
		return nil, 0, err
	}
	u, rev := &r.Upgrade, entry.Revision()
	u.seq, u.journal = r.Seq, r.Journal
	u.pending = map[string]*NodeProgress{}
	for _, np := range r.Pending {
		u.pending[StepKey(np.Node, np.Wave)] = np
	}
	if r.Nodes != nil { // a record from before steps had their own keys
		for k, np := range r.Nodes {
			np.Targets = r.LegacyTargets[k]
			u.pending[k] = np
		}
		return u, rev, nil
	}
	if nodes, ok := s.cachedSteps(id, rev); ok {
		u.Nodes = nodes
		return u, rev, nil
	}
	nodes, revs, err := s.readSteps(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	for k, np := range u.pending {
		c := *np
		nodes[k] = &c
	}
	if len(nodes) != r.Steps {
		return nil, 0, fmt.Errorf("read upgrade %s: %d steps found, the record counts %d; the bucket %s lost keys", id, len(nodes), r.Steps, events.BucketUpgrades)
	}
	u.Nodes = maps.Clone(nodes)
	s.remember(id, rev, nodes, revs)
	return u, rev, nil
}

// phase reads an upgrade's phase from its record alone, and whether a save
// is still being applied (an outbox or steps pending), without its steps.
func (s *store) phase(ctx context.Context, id string) (string, bool, error) {
	entry, err := s.kv.Get(ctx, id)
	if err != nil {
		return "", false, fmt.Errorf("get upgrade %s: %w", id, err)
	}
	var r struct {
		Phase   string            `json:"phase"`
		Outbox  []json.RawMessage `json:"outbox"`
		Pending []json.RawMessage `json:"pending"`
		Journal []string          `json:"journal"`
	}
	if err := json.Unmarshal(entry.Value(), &r); err != nil {
		return "", false, fmt.Errorf("decode upgrade %s: %w", id, err)
	}
	return r.Phase, len(r.Outbox)+len(r.Pending)+len(r.Journal) > 0, nil
}

// put saves u's record if its revision is still rev (creating it when rev
// is 0), with the steps changed since u was read as pending.
func (s *store) put(ctx context.Context, u *Upgrade, rev uint64) (uint64, error) {
	u.UpdatedAt = time.Now().UTC()
	seq := u.seq + 1
	pending := maps.Clone(u.pending)
	if pending == nil {
		pending = map[string]*NodeProgress{}
	}
	for _, k := range s.changed(u, rev) {
		np := *u.Nodes[k] // a copy: an unedited step is shared with the cache
		np.Seq = seq
		u.Nodes[k], pending[k] = &np, &np
	}
	r := record{Upgrade: *u, Seq: seq, Steps: len(u.Nodes)}
	r.Nodes = nil
	r.Plan = events.UpgradePlanned{Release: u.Plan.Release, Unchanged: u.Plan.Unchanged}
	for _, k := range slices.Sorted(maps.Keys(pending)) {
		r.Pending = append(r.Pending, pending[k])
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode upgrade %s: %w", u.ID, err)
	}
	var journal []string
	if len(raw) > recordInline {
		if journal, err = s.writeJournal(ctx, u.ID, r.Outbox, r.Pending); err != nil {
			return 0, err
		}
		r.Outbox, r.Pending, r.Journal = nil, nil, journal
		if raw, err = json.Marshal(r); err != nil {
			return 0, fmt.Errorf("encode upgrade %s: %w", u.ID, err)
		}
	}
	var next uint64
	if rev == 0 {
		next, err = s.kv.Create(ctx, u.ID, raw)
	} else {
		next, err = s.kv.Update(ctx, u.ID, raw, rev)
	}
	if err != nil {
		s.forget(u.ID, rev)
		s.purge(ctx, journal)
		return 0, fmt.Errorf("save upgrade %s: %w", u.ID, err)
	}
	// The cache takes u's steps as they are: a save is a handler's last
	// change to its upgrade, and a step is only changed through edit.
	s.remember(u.ID, next, maps.Clone(u.Nodes), nil)
	u.seq, u.pending, u.journal, u.dirty = seq, pending, append(u.journal, journal...), nil
	return next, nil
}

// changed returns the keys of u's steps to save: those edited since u was
// read at rev, or every step when the cache does not hold rev (a new
// upgrade, or one read in an older layout).
func (s *store) changed(u *Upgrade, rev uint64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache[u.ID]
	if c == nil || c.rev != rev || rev == 0 {
		return slices.Collect(maps.Keys(u.Nodes))
	}
	if s.verify {
		for k, np := range u.Nodes {
			if raw, _ := json.Marshal(np); !u.dirty[k] && string(raw) != c.shadow[k] {
				panic(fmt.Sprintf("planner: step %s of upgrade %s changed without Upgrade.edit: %s, was %s", k, u.ID, raw, c.shadow[k]))
			}
		}
	}
	return slices.Collect(maps.Keys(u.dirty))
}

// writeSteps writes u's pending steps to their keys.
func (s *store) writeSteps(ctx context.Context, u *Upgrade) error {
	for _, k := range slices.Sorted(maps.Keys(u.pending)) {
		if err := s.writeStep(ctx, u.ID, u.pending[k]); err != nil {
			return err
		}
	}
	return nil
}

// writeStep writes one step unless its key already holds the same or a
// later save of it (written by another planner that took over).
func (s *store) writeStep(ctx context.Context, id string, np *NodeProgress) error {
	key := stepKVKey(id, np)
	raw, err := json.Marshal(np)
	if err != nil {
		return fmt.Errorf("encode step %s: %w", key, err)
	}
	known := s.stepRevision(id, key)
	for range 5 {
		var rev uint64
		if known == 0 {
			rev, err = s.kv.Create(ctx, key, raw)
		} else {
			rev, err = s.kv.Update(ctx, key, raw, known)
		}
		if err == nil {
			s.setStepRevision(id, key, rev)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("save step %s: %w", key, err)
		}
		entry, gerr := s.kv.Get(ctx, key)
		if events.IsNotFound(gerr) {
			known = 0
			continue
		}
		if gerr != nil {
			return fmt.Errorf("read step %s: %w", key, gerr)
		}
		var cur NodeProgress
		if json.Unmarshal(entry.Value(), &cur) == nil && cur.Seq >= np.Seq {
			s.setStepRevision(id, key, entry.Revision())
			return nil
		}
		known = entry.Revision()
	}
	return fmt.Errorf("save step %s: contended; retrying", key)
}

// readSteps reads every step of an upgrade in one pass over its keys.
func (s *store) readSteps(ctx context.Context, id string) (map[string]*NodeProgress, map[string]uint64, error) {
	w, err := s.kv.WatchFiltered(ctx, []string{id + ".step.>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, nil, fmt.Errorf("read steps of upgrade %s: %w", id, err)
	}
	defer func() { _ = w.Stop() }()
	nodes, revs := map[string]*NodeProgress{}, map[string]uint64{}
	for {
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("read steps of upgrade %s: %w", id, ctx.Err())
		case entry, ok := <-w.Updates():
			if !ok {
				return nil, nil, fmt.Errorf("read steps of upgrade %s: watcher closed", id)
			}
			if entry == nil { // every current value was delivered
				return nodes, revs, nil
			}
			var np NodeProgress
			if err := json.Unmarshal(entry.Value(), &np); err != nil {
				return nil, nil, fmt.Errorf("decode step %s: %w", entry.Key(), err)
			}
			nodes[StepKey(np.Node, np.Wave)] = &np
			revs[entry.Key()] = entry.Revision()
		}
	}
}

// writeJournal stores an outbox and pending steps in journal keys of at
// most journalPartSize each, in order, and returns the keys.
func (s *store) writeJournal(ctx context.Context, id string, outbox []json.RawMessage, pending []*NodeProgress) ([]string, error) {
	var keys []string
	var part journalPart
	size := 0
	emit := func() error {
		if len(part.Outbox) == 0 && len(part.Pending) == 0 {
			return nil
		}
		raw, err := json.Marshal(part)
		if err != nil {
			return fmt.Errorf("encode journal of upgrade %s: %w", id, err)
		}
		key := id + ".journal." + nuid.Next()
		if _, err := s.kv.Put(ctx, key, raw); err != nil {
			s.purge(ctx, keys)
			return fmt.Errorf("save journal of upgrade %s: %w", id, err)
		}
		keys, part, size = append(keys, key), journalPart{}, 0
		return nil
	}
	for _, e := range outbox {
		if size > 0 && size+len(e) > journalPartSize {
			if err := emit(); err != nil {
				return nil, err
			}
		}
		part.Outbox, size = append(part.Outbox, e), size+len(e)
	}
	for _, np := range pending {
		n := 200 + 150*(len(np.Targets)+len(np.Results)) + len(np.Error) // a generous estimate of its JSON
		if size > 0 && size+n > journalPartSize {
			if err := emit(); err != nil {
				return nil, err
			}
		}
		part.Pending, size = append(part.Pending, np), size+n
	}
	if err := emit(); err != nil {
		return nil, err
	}
	return keys, nil
}

// readJournal reads a record's journal keys back into its outbox and pending steps.
func (s *store) readJournal(ctx context.Context, r *record) error {
	for _, key := range r.Journal {
		entry, err := s.kv.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read journal %s of upgrade %s: %w", key, r.ID, err)
		}
		var part journalPart
		if err := json.Unmarshal(entry.Value(), &part); err != nil {
			return fmt.Errorf("decode journal %s of upgrade %s: %w", key, r.ID, err)
		}
		r.Outbox = append(r.Outbox, part.Outbox...)
		r.Pending = append(r.Pending, part.Pending...)
	}
	return nil
}

// purge removes journal keys no record names any more; a failure leaves
// garbage, never a wrong state.
func (s *store) purge(ctx context.Context, keys []string) {
	for _, k := range keys {
		_ = s.kv.Purge(ctx, k)
	}
}

func (s *store) ids(ctx context.Context) ([]string, error) {
	// Records have one-token keys; steps and journals have more.
	lister, err := s.kv.ListKeysFiltered(ctx, "*")
	if err != nil {
		return nil, fmt.Errorf("list upgrades: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	return out, nil
}

func (s *store) cachedSteps(id string, rev uint64) (map[string]*NodeProgress, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cache[id]
	if c == nil || c.rev != rev {
		return nil, false
	}
	return maps.Clone(c.nodes), true
}

// remember caches nodes as the steps at rev, keeping the step revisions
// known so far and adding revs. The steps are shared, never changed in
// place (see Upgrade.edit); the map is the cache's own. A rev older than
// the cached one changes nothing: the deadline watcher reads upgrades while
// the consumer saves them, and a read that began before a save must not
// put the cache back, or the next event would read every step again.
func (s *store) remember(id string, rev uint64, nodes map[string]*NodeProgress, revs map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[string]*cached{}
	}
	c := s.cache[id]
	if c != nil && rev < c.rev {
		return
	}
	if c == nil {
		c = &cached{stepRev: map[string]uint64{}}
		s.cache[id] = c
	}
	c.rev, c.nodes = rev, nodes
	maps.Copy(c.stepRev, revs)
	if s.verify {
		c.shadow = map[string]string{}
		for k, np := range nodes {
			raw, _ := json.Marshal(np)
			c.shadow[k] = string(raw)
		}
	}
}

// forget drops an upgrade's cached steps if they are at rev, the revision
// a save just found changed by someone else (every revision when rev is 0).
func (s *store) forget(id string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cache[id]; c != nil && (rev == 0 || c.rev == rev) {
		delete(s.cache, id)
	}
}

// reset drops every cached upgrade, for a planner that starts leading: what
// another leader wrote meanwhile is read again.
func (s *store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = nil
}

func (s *store) stepRevision(id, key string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cache[id]; c != nil {
		return c.stepRev[key]
	}
	return 0
}

func (s *store) setStepRevision(id, key string, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cache[id]; c != nil {
		c.stepRev[key] = rev
	}
}

// wavesOf rebuilds a plan's waves from its steps.
func wavesOf(nodes map[string]*NodeProgress) []events.PlannedWave {
	byWave := map[int][]string{}
	for _, np := range nodes {
		byWave[np.Wave] = append(byWave[np.Wave], np.Node)
	}
	out := make([]events.PlannedWave, 0, len(byWave))
	for _, w := range slices.Sorted(maps.Keys(byWave)) {
		slices.Sort(byWave[w])
		out = append(out, events.PlannedWave{Index: w, Nodes: byWave[w]})
	}
	return out
}
