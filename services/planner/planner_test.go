package planner_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/planner"
)

var eventually = natstest.Eventually

// history is the bus's events as the planner tests read them.
type history struct{ *natstest.Recorder }

func record(t *testing.T, s *natstest.Server) *history { return &history{s.Record(t)} }

func (h *history) of(typ string) []events.Event { return h.Of(typ) }

func (h *history) types(upgrade string) []string {
	var out []string
	for _, e := range h.All() {
		if events.UpgradeID(e) == upgrade && e.Source() == "/cutover/planner" {
			t := strings.TrimPrefix(e.Type(), "dev.cutover.")
			if n := events.NodeID(e); n != "" {
				t += "@" + n
			}
			out = append(out, t)
		}
	}
	return out
}

func startPlanner(t *testing.T, js jetstream.JetStream) *planner.Planner {
	t.Helper()
	return startPlannerWith(t, js, planner.Config{})
}

func putInventory(t *testing.T, js jetstream.JetStream, node string, cs ...events.ObservedContainer) {
	t.Helper()
	if err := natstest.ReportInventory(t.Context(), js, node, cs); err != nil {
		t.Fatal(err)
	}
}

func web(name, image string) events.ObservedContainer {
	return events.ObservedContainer{Name: name, Service: "web", Image: image, State: "running"}
}

// fakeNode answers a node's commands the way a node-updater reports them.
// fail, when set, decides per command whether the node reports a failure.
func fakeNode(t *testing.T, js jetstream.JetStream, node string, fail func(events.NodeUpdateRequested) bool) {
	t.Helper()
	natstest.AnswerNodes(t, js, "fake-"+node, events.NodeCmdSubject(node), func(_ context.Context, d events.NodeUpdateRequested) (events.Data, error) {
		if fail != nil && fail(d) {
			return events.NodeUpdateFailed{Wave: d.Wave, Rollback: d.Rollback, Container: d.Containers[0].Container, Step: "health", Error: "never healthy",
				Results: []events.ContainerResult{{Container: d.Containers[0].Container, Result: events.ResultReverted}}}, nil
		}
		var rs []events.ContainerResult
		for _, c := range d.Containers {
			from := "web:v1"
			if d.Rollback {
				from = "web:v2"
			}
			rs = append(rs, events.ContainerResult{Container: c.Container, Result: events.ResultReplaced, FromImage: from, ToImage: c.Image})
		}
		return events.NodeUpdateCompleted{Wave: d.Wave, Rollback: d.Rollback, Results: rs}, nil
	})
}

func request(t *testing.T, js jetstream.JetStream, services map[string]string) string {
	t.Helper()
	rel := events.Release{Name: "v2", Services: map[string]events.ServiceRelease{}}
	for s, img := range services {
		rel.Services[s] = events.ServiceRelease{Image: img}
	}
	e := events.MustNew(events.Source("test", ""), events.UpgradeRequested{Release: rel})
	natstest.Publish(t, js, e)
	return e.ID()
}

func waitPhase(t *testing.T, js jetstream.JetStream, id, phase string) *planner.Upgrade {
	t.Helper()
	var u *planner.Upgrade
	eventually(t, 15*time.Second, "upgrade "+id+" to reach "+phase, func() bool {
		var err error
		u, err = planner.LoadUpgrade(t.Context(), js, id)
		return err == nil && u.Phase == phase && len(u.Outbox) == 0
	})
	return u
}

func TestUpgradeRollsNodeByNodeToCompletion(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
	putInventory(t, s.JS, "n2", web("web-2", "web:v1"), events.ObservedContainer{Name: "db-2", Service: "db", Image: "db:1"})
	putInventory(t, s.JS, "n3", web("web-3", "web:v2")) // already there
	fakeNode(t, s.JS, "n1", nil)
	fakeNode(t, s.JS, "n2", nil)
	startPlanner(t, s.JS)

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	u := waitPhase(t, s.JS, id, planner.PhaseCompleted)

	want := []string{
		"upgrade.planned", "upgrade.started",
		"node.update.requested@n1", "upgrade.wave.started",
		"upgrade.wave.completed", "node.update.requested@n2", "upgrade.wave.started",
		"upgrade.wave.completed", "upgrade.completed",
	}
	eventually(t, 5*time.Second, "the whole history", func() bool { return len(h.types(id)) == len(want) })
	if got := h.types(id); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("planner events:\n got %v\nwant %v", got, want)
	}
	plan, _ := events.DataAs[events.UpgradePlanned](h.of(events.TypeUpgradePlanned)[0])
	if len(plan.Changes) != 2 || plan.Unchanged != 1 || plan.Changes[0].Reason != "image differs" {
		t.Errorf("plan = %+v", plan)
	}
	done, _ := events.DataAs[events.UpgradeCompleted](h.of(events.TypeUpgradeCompleted)[0])
	if done.Replaced != 2 || done.Unchanged != 1 {
		t.Errorf("completed = %+v, want 2 replaced and 1 unchanged", done)
	}
	if u.Nodes[planner.StepKey("n1", 0)].Status != planner.NodeCompleted || u.Nodes[planner.StepKey("n2", 1)].Status != planner.NodeCompleted {
		t.Errorf("nodes = %+v", u.Nodes)
	}
}

func TestFailedWaveRollsBackEarlierNodes(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
	putInventory(t, s.JS, "n2", web("web-2", "web:v1"))
	fakeNode(t, s.JS, "n1", nil)
	fakeNode(t, s.JS, "n2", func(d events.NodeUpdateRequested) bool { return true })
	startPlanner(t, s.JS)

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	waitPhase(t, s.JS, id, planner.PhaseRolledBack)

	cmds := h.of(events.TypeNodeUpdateRequested)
	if len(cmds) != 3 {
		t.Fatalf("%d node commands, want 3 (n1, n2, rollback of n1)", len(cmds))
	}
	rb, _ := events.DataAs[events.NodeUpdateRequested](cmds[2])
	if events.NodeID(cmds[2]) != "n1" || !rb.Rollback || rb.Containers[0].Image != "web:v1" {
		t.Errorf("rollback command to %s = %+v, want n1 back to web:v1", events.NodeID(cmds[2]), rb)
	}
	rc, _ := events.DataAs[events.RollbackCompleted](h.of(events.TypeRollbackCompleted)[0])
	if rc.Result != "completed" || len(rc.Nodes) != 1 || !strings.Contains(rc.Reason, "never healthy") {
		t.Errorf("rollback completed = %+v", rc)
	}
	if f := h.of(events.TypeUpgradeFailed); len(f) != 1 {
		t.Errorf("%d upgrade.failed events, want 1", len(f))
	}
}

func TestSecondRequestIsRefusedWhileOneRuns(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
	startPlanner(t, s.JS) // no node answers: the first upgrade stays running

	first := request(t, s.JS, map[string]string{"web": "web:v2"})
	waitPhase(t, s.JS, first, planner.PhaseRunning)
	second := request(t, s.JS, map[string]string{"web": "web:v3"})
	waitPhase(t, s.JS, second, planner.PhaseFailed)
	f := h.of(events.TypeUpgradeFailed)
	eventually(t, 5*time.Second, "upgrade.failed", func() bool { f = h.of(events.TypeUpgradeFailed); return len(f) == 1 })
	d, _ := events.DataAs[events.UpgradeFailed](f[0])
	if events.UpgradeID(f[0]) != second || !strings.Contains(d.Reason, first) {
		t.Errorf("failed = %+v for %s; want the second refused naming %s", d, events.UpgradeID(f[0]), first)
	}
}

func TestUnknownServiceIsRefusedWithTheFix(t *testing.T) {
	s := natstest.Start(t)
	putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
	startPlanner(t, s.JS)
	id := request(t, s.JS, map[string]string{"wbe": "web:v2"})
	u := waitPhase(t, s.JS, id, planner.PhaseFailed)
	if !strings.Contains(u.Reason, "dev.cutover.service=wbe") || !strings.Contains(u.Reason, "check the service names") {
		t.Errorf("reason = %q", u.Reason)
	}
	// The lock was released: a correct request runs.
	fakeNode(t, s.JS, "n1", nil)
	waitPhase(t, s.JS, request(t, s.JS, map[string]string{"web": "web:v2"}), planner.PhaseCompleted)
}

func TestRestartedPlannerResumesWithoutRepeating(t *testing.T) {
	s := natstest.Start(t)
	h := record(t, s)
	putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
	putInventory(t, s.JS, "n2", web("web-2", "web:v1"))
	fakeNode(t, s.JS, "n1", nil)
	p := startPlanner(t, s.JS)

	id := request(t, s.JS, map[string]string{"web": "web:v2"})
	eventually(t, 10*time.Second, "command to n2", func() bool { return strings.Contains(strings.Join(h.types(id), " "), "@n2") })
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// n2 answers while no planner runs; a new planner picks the answer up.
	fakeNode(t, s.JS, "n2", nil)
	startPlanner(t, s.JS)
	waitPhase(t, s.JS, id, planner.PhaseCompleted)
	for _, n := range []string{"n1", "n2"} {
		count := 0
		for _, c := range h.of(events.TypeNodeUpdateRequested) {
			if events.NodeID(c) == n {
				count++
			}
		}
		if count != 1 {
			t.Errorf("node %s got %d commands, want 1", n, count)
		}
	}
}

func TestPendingOutboxIsPublishedOnStartOnce(t *testing.T) {
	// A planner that saved its decision but died before publishing: the
	// record holds the command in its outbox and, in today's layout, the
	// step it changed as pending. A record from before steps had their own
	// keys holds every step inline.
	for _, layout := range []string{"steps pending in the record", "steps inline (older records)"} {
		t.Run(layout, func(t *testing.T) {
			s := natstest.Start(t)
			putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
			target := []events.ContainerTarget{{Container: "web-1", Image: "web:v2"}}
			cmd := events.MustNew(events.Source("planner", ""), events.NodeUpdateRequested{Containers: target},
				events.WithUpgrade("u-crashed"), events.WithNode("n1"))
			raw, _ := json.Marshal(cmd)
			step := map[string]any{"node": "n1", "wave": 0, "status": planner.NodeSent, "command_id": cmd.ID()}
			rec := map[string]any{"id": "u-crashed", "phase": planner.PhaseRunning, "outbox": []json.RawMessage{raw}}
			if layout == "steps pending in the record" {
				step["targets"], step["seq"] = target, 1
				rec["seq"], rec["steps"], rec["pending"] = 1, 1, []any{step}
			} else {
				rec["nodes"] = map[string]any{planner.StepKey("n1", 0): step}
				rec["targets"] = map[string]any{planner.StepKey("n1", 0): target}
			}
			state, _ := json.Marshal(rec)
			kv, _ := s.JS.KeyValue(t.Context(), events.BucketUpgrades)
			if _, err := kv.Put(t.Context(), "u-crashed", state); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				p := startPlanner(t, s.JS)
				_ = p.Close(t.Context())
			}
			st, _ := s.JS.Stream(t.Context(), events.StreamName)
			msgs, err := st.GetLastMsgForSubject(t.Context(), events.NodeCmdSubject("n1"))
			if err != nil {
				t.Fatalf("command never published: %v", err)
			}
			info, _ := st.Info(t.Context(), jetstream.WithSubjectFilter(events.NodeCmdSubject("n1")))
			if info.State.Msgs != 1 || msgs.Header.Get(nats.MsgIdHdr) != cmd.ID() {
				t.Errorf("stream holds %d commands for n1 (want 1 with id %s)", info.State.Msgs, cmd.ID())
			}
			u, err := planner.LoadUpgrade(t.Context(), s.JS, "u-crashed")
			if err != nil {
				t.Fatal(err)
			}
			if len(u.Outbox) != 0 {
				t.Error("outbox not cleared after publishing")
			}
			np := u.Nodes[planner.StepKey("n1", 0)]
			if np == nil || np.Status != planner.NodeSent || np.CommandID != cmd.ID() || len(np.Targets) != 1 {
				t.Errorf("step read back = %+v; want it sent with command %s and its target", np, cmd.ID())
			}
			if _, err := kv.Get(t.Context(), "u-crashed.step.0.n1"); err != nil {
				t.Errorf("step not written to its own key: %v", err)
			}
		})
	}
}

// TestDurationsComeFromThePlannersClock: a request without a time attribute
// (the README's binary-mode example) got requested_at 0001-01-01 and
// duration_ms 9223372036854; one from a client clock ahead got a negative
// duration. The planner now counts from when it accepted the request.
func TestDurationsComeFromThePlannersClock(t *testing.T) {
	for _, tc := range []struct{ name, time string }{
		{"no time attribute", ""},
		{"a client clock an hour ahead", time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)},
		{"a client clock a year behind", time.Now().AddDate(-1, 0, 0).UTC().Format(time.RFC3339Nano)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t)
			h := record(t, s)
			putInventory(t, s.JS, "n1", web("web-1", "web:v1"))
			fakeNode(t, s.JS, "n1", nil)
			startPlanner(t, s.JS)

			before := time.Now().UTC()
			m := nats.NewMsg(events.SubjectUpgradeRequested)
			m.Header.Set("ce-specversion", "1.0")
			m.Header.Set("ce-id", "clock-1")
			m.Header.Set("ce-source", "/ops")
			m.Header.Set("ce-type", events.TypeUpgradeRequested)
			if tc.time != "" {
				m.Header.Set("ce-time", tc.time)
			}
			m.Data = []byte(`{"release":{"name":"v2","services":{"web":{"image":"web:v2"}}}}`)
			if _, err := s.JS.PublishMsg(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			u := waitPhase(t, s.JS, "clock-1", planner.PhaseCompleted)
			after := time.Now().UTC()
			if u.RequestedAt.Before(before) || u.RequestedAt.After(after) {
				t.Errorf("requested_at %v is not the planner's clock (between %v and %v)", u.RequestedAt, before, after)
			}
			eventually(t, 5*time.Second, "upgrade.completed", func() bool { return len(h.of(events.TypeUpgradeCompleted)) == 1 })
			done, _ := events.DataAs[events.UpgradeCompleted](h.of(events.TypeUpgradeCompleted)[0])
			if done.DurationMs < 0 || done.DurationMs > after.Sub(before).Milliseconds() {
				t.Errorf("duration_ms %d, want between 0 and the %d ms the test took", done.DurationMs, after.Sub(before).Milliseconds())
			}
		})
	}
}
