package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/fleetinfo"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor"
	auditsqlite "github.com/cutover-dev/cutover/services/auditor/sqlite"
	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
	"github.com/cutover-dev/cutover/services/migrator"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
	"github.com/cutover-dev/cutover/services/planner"
)

// recordingBalancer is the lb-agent's load balancer, in memory.
type recordingBalancer struct {
	mu      sync.Mutex
	drained []string
}

func (b *recordingBalancer) Drain(_ context.Context, backend, server string, _ time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drained = append(b.drained, backend+"/"+server)
	return nil
}

func (b *recordingBalancer) SetState(context.Context, string, string, string) error { return nil }

// TestPoisonMessagesNeverStopAService is issue 13's trial: the message with
// the header ce-specversion: 0 crashed the planner and the auditor (on
// cutover.upgrade.requested), the node-updater and the migrator (on their
// command subjects), and every restart read it again. Here every real
// service runs against a real embedded JetStream; that message, and every
// crasher kept in the fuzz corpus, is published to each service's subject.
// Every service stays up, handles a valid event afterwards, and each bad
// message gets exactly one rejection.
func TestPoisonMessagesNeverStopAService(t *testing.T) {
	s := natstest.Start(t)
	ctx := t.Context()
	quiet := slog.New(slog.DiscardHandler)
	start := func(name string, startFn, closeFn func(context.Context) error) {
		t.Helper()
		if err := startFn(ctx); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() { _ = closeFn(context.Background()) })
	}

	store, err := auditsqlite.Open(ctx, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	aud, err := auditor.New(auditor.Config{Logger: quiet}, s.JS, store)
	if err != nil {
		t.Fatal(err)
	}
	start("auditor", aud.Start, aud.Close)
	mig, err := migrator.New(migrator.Config{Logger: quiet, Drivers: map[string]migrator.Driver{"sqlite": migsqlite.Driver{}}}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	start("migrator", mig.Start, mig.Close)
	rt, err := sim.New(sim.Config{Node: "n1"}, []sim.ContainerSpec{{Name: "web-1", Service: "web", Image: "web:v1"}})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := nodeupdater.New(nodeupdater.Config{Node: "n1", Logger: quiet}, s.JS, rt)
	if err != nil {
		t.Fatal(err)
	}
	start("node-updater", upd.Start, upd.Close)
	lb := &recordingBalancer{}
	agent, err := lbagent.New(lbagent.Config{Logger: quiet, Backends: map[string]string{"web-1": "web_back"}}, s.JS, lb)
	if err != nil {
		t.Fatal(err)
	}
	start("lb-agent", agent.Start, agent.Close)
	p, err := planner.New(ctx, planner.Config{Logger: quiet, PollInterval: 50 * time.Millisecond}, s.JS)
	if err != nil {
		t.Fatal(err)
	}
	start("planner", p.Start, p.Close)

	// Every service's subject, with the type a client would aim at it.
	targets := []struct{ subject, typ string }{
		{events.SubjectUpgradeRequested, events.TypeUpgradeRequested},      // planner, auditor
		{events.NodeCmdSubject("n1"), events.TypeNodeUpdateRequested},      // node-updater
		{events.SubjectMigrationCmd, events.TypeMigrationRequested},        // migrator
		{events.NodeStatusSubject("n1"), events.TypeContainerDraining},     // lb-agent
		{events.SubjectUpgradeControl, events.TypeUpgradeControlRequested}, // planner
	}
	var bad []*nats.Msg
	for _, tg := range targets {
		m := natstest.Poison(tg.subject, tg.typ, "poison-"+tg.subject)
		m.Data = []byte(`{"release":{"name":"x","services":{"web":{"image":"web:2"}}}}`)
		bad = append(bad, m)
		for _, c := range fuzzCrashers(t, tg.subject) {
			if _, err := events.DecodeMsg(c.Subject, c.Header, c.Data); err != nil {
				bad = append(bad, c) // a valid one (the README's example) is not a crasher
			}
		}
	}
	// What a subscriber (`nats sub cutover.event.rejected`, an alert) sees.
	var subMu sync.Mutex
	seen := map[uint64]int{}
	sub, err := s.Conn.Subscribe(events.SubjectRejected, func(m *nats.Msg) {
		e, err := events.Decode(m.Header, m.Data)
		if err != nil {
			return
		}
		if r, err := events.DataAs[events.EventRejected](e); err == nil {
			subMu.Lock()
			seen[r.StreamSequence]++
			subMu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	badSeqs := map[uint64]string{}
	for _, m := range bad {
		ack, err := s.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		badSeqs[ack.Sequence] = m.Subject
	}
	t.Logf("%d bad messages on %d subjects", len(bad), len(targets))

	// Then a valid event for each service.
	pub := events.NewPublisher(s.JS)
	migrations, dbPath, _ := sqliteWithMigrations(t, map[string]string{
		"0001_t.up.sql": "CREATE TABLE t (id INTEGER);", "0001_t.down.sql": "DROP TABLE t;",
	}, "")
	migReq := events.MustNew(events.Source("test", ""), events.MigrationRequested{Driver: "sqlite", Database: dbPath, Source: migrations})
	req := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	draining := events.MustNew(events.Source("test", "n1"), events.ContainerDraining{Container: "web-1", Service: "web"}, events.WithNode("n1"))
	for _, e := range []events.Event{migReq, draining, req} {
		if err := pub.Publish(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(typ, cause string) func() bool {
		return func() bool {
			return recorded(t, s.JS, func(e events.Event) bool {
				return e.Type() == typ && events.CausationID(e) == cause
			})
		}
	}
	natstest.Eventually(t, 30*time.Second, "the migrator to migrate", answered(events.TypeMigrationCompleted, migReq.ID()))
	natstest.Eventually(t, 30*time.Second, "the lb-agent to drain", answered(events.TypeContainerDrained, draining.ID()))
	var u *planner.Upgrade
	natstest.Eventually(t, 60*time.Second, "the planner and the node-updater to upgrade", func() bool {
		u, err = planner.LoadUpgrade(ctx, s.JS, req.ID())
		return err == nil && u.Final()
	})
	if u.Phase != planner.PhaseCompleted {
		t.Errorf("upgrade after the poison: %s (%s), want completed", u.Phase, u.Reason)
	}
	natstest.Eventually(t, 30*time.Second, "the auditor to record the upgrade", func() bool {
		recs, err := store.Events(ctx, req.ID())
		return err == nil && len(recs) > 0 && recs[len(recs)-1].Type == events.TypeUpgradeCompleted
	})

	// Exactly one rejection per bad message, none for anything else.
	perSeq := map[uint64]int{}
	natstest.Eventually(t, 10*time.Second, "a rejection for each bad message", func() bool {
		perSeq = rejectionsBySequence(t, s.JS)
		return len(perSeq) >= len(badSeqs)
	})
	for seq, n := range perSeq {
		if _, ok := badSeqs[seq]; !ok {
			t.Errorf("a rejection for stream sequence %d, which is not a bad message", seq)
		} else if n != 1 {
			t.Errorf("%d rejections for the bad message %d on %s, want 1", n, seq, badSeqs[seq])
		}
	}
	for seq, subj := range badSeqs {
		if perSeq[seq] == 0 {
			t.Errorf("no rejection for the bad message %d on %s", seq, subj)
		}
	}
	subMu.Lock()
	defer subMu.Unlock()
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("a subscriber saw %d rejections of the bad message %d on %s, want 1", n, seq, badSeqs[seq])
		}
	}
	if len(seen) != len(badSeqs) {
		t.Errorf("a subscriber saw rejections of %d messages, want %d", len(seen), len(badSeqs))
	}
}

// recorded reports whether the stream holds an event matching ok.
func recorded(t *testing.T, js jetstream.JetStream, ok func(events.Event) bool) bool {
	t.Helper()
	found := false
	forEachEvent(t, js, events.SubjectAll, func(_ uint64, e events.Event) {
		found = found || ok(e)
	})
	return found
}

// rejectionsBySequence counts the stored rejections per rejected stream sequence.
func rejectionsBySequence(t *testing.T, js jetstream.JetStream) map[uint64]int {
	t.Helper()
	out := map[uint64]int{}
	forEachEvent(t, js, events.SubjectRejected, func(_ uint64, e events.Event) {
		if r, err := events.DataAs[events.EventRejected](e); err == nil {
			out[r.StreamSequence]++
		}
	})
	return out
}

// forEachEvent reads every stored event on subject, skipping what does not decode.
func forEachEvent(t *testing.T, js jetstream.JetStream, subject string, f func(seq uint64, e events.Event)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for n := info.NumPending; n > 0; n-- {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		meta, _ := m.Metadata()
		if e, err := events.Decode(m.Headers(), m.Data()); err == nil && meta != nil {
			f(meta.Sequence.Stream, e)
		}
	}
}

// fuzzCrashers reads the events module's fuzz corpus of the two envelope
// decoders and turns each entry into a message on subject.
func fuzzCrashers(t *testing.T, subject string) []*nats.Msg {
	t.Helper()
	var out []*nats.Msg
	for _, target := range []string{"FuzzDecodeBinary", "FuzzDecodeStructured"} {
		dir := filepath.Join("..", "..", "events", "testdata", "fuzz", target)
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("read the fuzz corpus: %v", err)
		}
		names := make([]string, 0, len(files))
		for _, f := range files {
			names = append(names, f.Name())
		}
		sort.Strings(names)
		for _, name := range names {
			vals := corpusValues(t, filepath.Join(dir, name))
			m := nats.NewMsg(subject)
			switch target {
			case "FuzzDecodeBinary": // specversion, id, source, type, time, extName, extValue, contentType, body
				m.Header.Set("ce-specversion", vals[0])
				for i, h := range []string{"ce-id", "ce-source", "ce-type", "ce-time"} {
					if vals[i+1] != "" {
						m.Header.Set(h, vals[i+1])
					}
				}
				if vals[5] != "" {
					m.Header.Set("ce-"+vals[5], vals[6])
				}
				if vals[7] != "" {
					m.Header.Set("Content-Type", vals[7])
				}
				m.Data = []byte(vals[8])
			case "FuzzDecodeStructured": // subject, body
				m.Data = []byte(vals[1])
			}
			out = append(out, m)
		}
	}
	return out
}

// corpusValues parses a "go test fuzz v1" file of string and []byte values.
func corpusValues(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "go test fuzz") {
			continue
		}
		open := strings.IndexByte(line, '(')
		if open < 0 || !strings.HasSuffix(line, ")") {
			t.Fatalf("%s: unexpected corpus line %q", path, line)
		}
		v, err := strconv.Unquote(line[open+1 : len(line)-1])
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
		vals = append(vals, v)
	}
	return vals
}

// TestRejectedListsWhatWasRefused: cutover rejected shows an operator each
// refused message once, with its field and reason, and whether the message
// is still in the stream.
func TestRejectedListsWhatWasRefused(t *testing.T) {
	s := natstest.Start(t)
	nopts := []string{"--nats", s.ClientURL()}
	if r := runCLI(t.Context(), append([]string{"rejected"}, nopts...)...); r.code != 0 || !strings.Contains(r.stdout, "no rejected messages") {
		t.Fatalf("empty stream: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	for _, name := range []string{"planner", "auditor"} {
		c, err := events.Consume(t.Context(), s.JS, events.ConsumerConfig{Durable: name, FilterSubjects: []string{events.SubjectUpgradeRequested}}, func(context.Context, events.Event) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
	}
	poison := natstest.Poison(events.SubjectUpgradeRequested, events.TypeUpgradeRequested, "poison-1")
	if _, err := s.JS.PublishMsg(t.Context(), poison); err != nil {
		t.Fatal(err)
	}
	var rows []fleetinfo.RejectedRow
	natstest.Eventually(t, 10*time.Second, "cutover rejected to list the message", func() bool {
		r := runCLI(t.Context(), append([]string{"rejected", "-o", "json"}, nopts...)...)
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &rows) == nil && len(rows) > 0
	})
	if len(rows) != 1 || rows[0].StreamSequence != 1 || rows[0].Field != "specversion" || rows[0].EventID != "poison-1" || !rows[0].Stored || rows[0].At.IsZero() {
		t.Errorf("rows = %+v, want the one poison message, field specversion, still stored", rows)
	}
	r := runCLI(t.Context(), append([]string{"rejected"}, nopts...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "poison-1") || !strings.Contains(r.stdout, "specversion") || !strings.Contains(r.stdout, "1.0 only") {
		t.Errorf("text: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t.Context(), append([]string{"rejected", "--limit", "-1"}, nopts...)...); r.code != 2 {
		t.Errorf("--limit -1: exit %d, want 2 (usage)", r.code)
	}
}
