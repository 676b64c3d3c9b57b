package nodeupdater_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// refuseStream makes the stream refuse every new message (it holds as many
// as it may), or, with refuse false, take them again: a bus that does not
// store events for as long as the test wants, without a clock.
func refuseStream(ctx context.Context, js jetstream.JetStream, refuse bool) error {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	cfg := info.Config
	cfg.Discard, cfg.MaxMsgs = jetstream.DiscardOld, -1
	if refuse {
		cfg.Discard, cfg.MaxMsgs = jetstream.DiscardNew, int64(info.State.Msgs)
	}
	_, err = js.UpdateStream(ctx, cfg)
	return err
}

// streamEvents reads every event stored on subject.
func streamEvents(t *testing.T, js jetstream.JetStream, subject string) []events.Event {
	t.Helper()
	ctx := t.Context()
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil || m.Subject != subject {
			continue
		}
		e, err := events.DecodeMsg(m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatalf("stream sequence %d: %v", seq, err)
		}
		out = append(out, e)
	}
	return out
}

// TestStatusEventsSurviveABusThatRefusesThem replaces a container while the
// stream refuses every event, from the pull until the replacement is done
// on the engine, then lets the bus take events again: every event the
// updater produced must arrive, once each by id, in the order it produced
// them, and the command must complete as replaced.
func TestStatusEventsSurviveABusThatRefusesThem(t *testing.T) {
	s := natstest.Start(t)
	const node = "n1"
	rt, err := sim.New(sim.Config{Node: node, Seed: 1}, []sim.ContainerSpec{{Name: "web", Service: "web", Image: "app:1"}})
	if err != nil {
		t.Fatal(err)
	}
	refused := make(chan error, 1)
	logs := &natstest.Logs{}
	u, err := nodeupdater.New(nodeupdater.Config{
		Node: node, HeartbeatEvery: -1, Logger: logs.Logger(),
		AfterStep: func(step string) {
			if step == nodeupdater.StepPull {
				refused <- refuseStream(context.Background(), s.JS, true)
			}
		},
	}, s.JS, rt)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close(context.WithoutCancel(t.Context())) })

	cmd := events.MustNew(events.Source("test", ""), events.NodeUpdateRequested{
		Containers: []events.ContainerTarget{{Container: "web", Image: "app:2"}},
	}, events.WithNode(node))
	natstest.Publish(t, s.JS, cmd)

	select {
	case err := <-refused:
		if err != nil {
			t.Fatalf("make the stream refuse events: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the updater never pulled the new image")
	}
	natstest.Eventually(t, 30*time.Second, "the replacement to finish on the engine while the bus refuses events", func() bool {
		return rt.Images()["web"] == "app:2" && len(rt.Images()) == 1 && rt.Serving()["web"]
	})
	if err := refuseStream(t.Context(), s.JS, false); err != nil {
		t.Fatal(err)
	}

	subject := events.NodeStatusSubject(node)
	var got []events.Event
	natstest.Eventually(t, 60*time.Second, "the command's final event in the stream", func() bool {
		got = streamEvents(t, s.JS, subject)
		return slices.ContainsFunc(got, func(e events.Event) bool {
			return e.Type() == events.TypeNodeUpdateCompleted || e.Type() == events.TypeNodeUpdateFailed
		})
	})
	natstest.Settled(t, s.JS, "node-updater-"+node, 30*time.Second)
	if err := u.Close(t.Context()); err != nil {
		t.Fatalf("close: %v", err)
	}
	got = streamEvents(t, s.JS, subject)

	seen := map[string]int{}
	var types []string
	for _, e := range got {
		seen[e.ID()]++
		types = append(types, e.Type())
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s is in the stream %d times, want once", id, n)
		}
	}
	want := []string{events.TypeContainerPulled, events.TypeContainerDraining, events.TypeContainerReplaced, events.TypeNodeUpdateCompleted}
	if !slices.Equal(types, want) {
		t.Fatalf("status events in the stream %v, want %v (in order)\nlogs:\n%s", types, want, logs)
	}
	for _, e := range got {
		if events.CausationID(e) != cmd.ID() {
			t.Errorf("%s %s is caused by %q, want the command %s", e.Type(), e.ID(), events.CausationID(e), cmd.ID())
		}
	}
	replaced := dataAs[events.ContainerReplaced](t, got[2])
	if replaced.Result != events.ResultReplaced || replaced.FromImage != "app:1" || replaced.ToImage != "app:2" {
		t.Errorf("container.replaced %+v, want web replaced from app:1 to app:2", replaced)
	}
	done := dataAs[events.NodeUpdateCompleted](t, got[3])
	if len(done.Results) != 1 {
		t.Fatalf("completed results %+v, want one for web", done.Results)
	}
	if fmt.Sprint(done.Results) != fmt.Sprint([]events.ContainerResult{{Container: "web", Result: events.ResultReplaced, FromImage: "app:1", ToImage: "app:2", InterruptionMs: done.Results[0].InterruptionMs}}) {
		t.Errorf("completed results %+v, want web replaced", done.Results)
	}
}
