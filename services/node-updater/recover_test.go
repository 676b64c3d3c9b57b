package nodeupdater_test

import (
	"context"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// TestRecoveryReportsWhatItDid leaves a simulated engine as a node-updater
// killed half-way through a stop-first replacement leaves it (old container
// renamed and stopped; in one case the new one created and running), with
// the interrupted command unacked in the stream, and starts an updater.
// Recovery must say at once what it did (container.reverted, step recovery;
// or container.replaced, recovered) with an interruption counted from the
// old container's stop, not from the restart; the redelivered command must
// count that outage in its result and report the replacement once.
func TestRecoveryReportsWhatItDid(t *testing.T) {
	tests := []struct {
		name string
		// started: the crash came after the new container started, so
		// recovery finishes the replacement instead of reverting it.
		started bool
	}{
		{name: "killed after the stop: recovery reverts"},
		{name: "killed after the start: recovery finishes", started: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t)
			const node = "n1"
			ctx := t.Context()
			rt, err := sim.New(sim.Config{Node: node, Seed: 1}, []sim.ContainerSpec{{Name: "web", Service: "web", Image: "app:1"}})
			if err != nil {
				t.Fatal(err)
			}
			cmd := events.MustNew(events.Source("test", ""), events.NodeUpdateRequested{
				Containers: []events.ContainerTarget{{Container: "web", Image: "app:2", MinHealthyMs: 1}},
			}, events.WithNode(node), events.WithUpgrade("u-crash"))

			// What the killed updater did before dying.
			if _, err := rt.Pull(ctx, "app:2"); err != nil {
				t.Fatal(err)
			}
			if err := rt.Rename(ctx, "web", "web"+nodeupdater.OldSuffix); err != nil {
				t.Fatal(err)
			}
			if err := rt.Stop(ctx, "web"+nodeupdater.OldSuffix, time.Second); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now() // the engine's record of the stop is no later
			if tc.started {
				id, err := rt.CreateReplacement(ctx, "web"+nodeupdater.OldSuffix, "web", "app:2", map[string]string{
					nodeupdater.LabelCommand: cmd.ID(), nodeupdater.LabelUpgrade: "u-crash",
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := rt.Start(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			natstest.Publish(t, s.JS, cmd)
			// The updater stays down a while, as a killed one does until it
			// is restarted: that time is part of the outage.
			time.Sleep(50 * time.Millisecond)
			down := time.Since(stopped)

			logs := &natstest.Logs{}
			u, err := nodeupdater.New(nodeupdater.Config{Node: node, HeartbeatEvery: -1, Logger: logs.Logger()}, s.JS, rt)
			if err != nil {
				t.Fatal(err)
			}
			if err := u.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = u.Close(context.WithoutCancel(t.Context())) })

			subject := events.NodeStatusSubject(node)
			var got []events.Event
			natstest.Eventually(t, 30*time.Second, "the command's completion", func() bool {
				got = streamEvents(t, s.JS, subject)
				return len(got) > 0 && got[len(got)-1].Type() == events.TypeNodeUpdateCompleted
			})
			natstest.Settled(t, s.JS, "node-updater-"+node, 30*time.Second)
			if err := u.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got = streamEvents(t, s.JS, subject)
			if len(got) == 0 {
				t.Fatal("no status events")
			}
			first := got[0]
			var outage int64
			if tc.started {
				if first.Type() != events.TypeContainerReplaced {
					t.Fatalf("first status event %s, want recovery's container.replaced\nlogs:\n%s", first.Type(), logs)
				}
				rep := dataAs[events.ContainerReplaced](t, first)
				if !rep.Recovered || rep.Result != events.ResultReplaced || rep.FromImage != "app:1" || rep.ToImage != "app:2" {
					t.Errorf("recovery's container.replaced %+v, want web recovered from app:1 to app:2", rep)
				}
				outage = rep.InterruptionMs
			} else {
				if first.Type() != events.TypeContainerReverted {
					t.Fatalf("first status event %s, want recovery's container.reverted\nlogs:\n%s", first.Type(), logs)
				}
				rev := dataAs[events.ContainerReverted](t, first)
				if rev.Container != "web" || rev.Step != nodeupdater.StepRecovery || rev.Reason == "" || rev.InterruptionUnknown {
					t.Errorf("recovery's container.reverted %+v, want web, step recovery, a reason and a known interruption", rev)
				}
				outage = rev.InterruptionMs
			}
			if outage < down.Milliseconds() {
				t.Errorf("recovery reports an interruption of %d ms; the container was down at least %d ms before the updater even started", outage, down.Milliseconds())
			}
			if tc.started && (events.CausationID(first) != cmd.ID() || events.UpgradeID(first) != "u-crash") {
				t.Errorf("recovery's event is caused by %q in upgrade %q, want the command %s of u-crash recorded on the container", events.CausationID(first), events.UpgradeID(first), cmd.ID())
			}

			replaced := 0
			for _, e := range got {
				if e.Type() == events.TypeContainerReplaced {
					replaced++
				}
			}
			if replaced != 1 {
				t.Errorf("%d container.replaced events for one replacement, want 1", replaced)
			}
			done := dataAs[events.NodeUpdateCompleted](t, got[len(got)-1])
			if len(done.Results) != 1 || done.Results[0].Result != events.ResultReplaced {
				t.Fatalf("completed results %+v, want web replaced", done.Results)
			}
			t.Logf("down before the restart >= %d ms; recovery reported %d ms; the command's result %d ms", down.Milliseconds(), outage, done.Results[0].InterruptionMs)
			if res := done.Results[0]; res.InterruptionMs < outage || res.InterruptionUnknown {
				t.Errorf("the command reports an interruption of %d ms (unknown %v); recovery alone measured %d ms", res.InterruptionMs, res.InterruptionUnknown, outage)
			}
			if img := rt.Images()["web"]; img != "app:2" || len(rt.Images()) != 1 {
				t.Errorf("engine holds %v, want only web on app:2", rt.Images())
			}
		})
	}
}
