package sim_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/events/redact"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

func TestParseDist(t *testing.T) {
	tests := []struct {
		name, in string
		want     sim.Dist
		wantErr  bool
	}{
		{"zero", "0", sim.Fixed(0), false},
		{"fixed", "50ms", sim.Fixed(50 * time.Millisecond), false},
		{"uniform", "10ms-200ms", sim.Uniform(10*time.Millisecond, 200*time.Millisecond), false},
		{"normal", "normal:100ms,20ms", sim.Normal(100*time.Millisecond, 20*time.Millisecond), false},
		{"uniform reversed", "2s-1s", sim.Dist{}, true},
		{"normal without stddev", "normal:1s", sim.Dist{}, true},
		{"garbage", "fast", sim.Dist{}, true},
		{"negative", "-5ms", sim.Dist{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sim.ParseDist(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ParseDist(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err == nil {
				again, err := sim.ParseDist(got.String())
				if err != nil || again != got {
					t.Fatalf("ParseDist(%q.String() = %q) = %v, %v", tc.in, got.String(), again, err)
				}
			}
		})
	}
}

func TestDistDrawBounds(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	u := sim.Uniform(10*time.Millisecond, 20*time.Millisecond)
	n := sim.Normal(time.Millisecond, 10*time.Millisecond)
	for range 1000 {
		if d := u.Draw(r); d < 10*time.Millisecond || d > 20*time.Millisecond {
			t.Fatalf("uniform draw %v outside [10ms, 20ms]", d)
		}
		if d := n.Draw(r); d < 0 {
			t.Fatalf("normal draw %v is negative", d)
		}
	}
}

func TestSpread(t *testing.T) {
	f := sim.Spread(0.05)
	got := 1 - (1-f.Pull)*(1-f.Start)*(1-f.Health)
	if got < 0.0499 || got > 0.0501 {
		t.Fatalf("Spread(0.05) fails %.4f of replacements, want 0.05", got)
	}
}

// outcome runs n fresh-container starts and records which fail.
func outcome(t *testing.T, seed int64, n int) []bool {
	t.Helper()
	rt, err := sim.New(sim.Config{Node: "n1", Seed: seed, Failures: sim.Failures{Start: 0.5}}, []sim.ContainerSpec{{Name: "web", Service: "web", Image: "web:1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := rt.Pull(ctx, "web:2"); err != nil {
		t.Fatal(err)
	}
	var out []bool
	for i := range n {
		id, err := rt.CreateReplacement(ctx, "web", fmt.Sprintf("web-%d", i), "web:2", nil)
		if err != nil {
			t.Fatal(err)
		}
		err = rt.Start(ctx, id)
		if err != nil && !errors.Is(err, sim.ErrSimulated) {
			t.Fatal(err)
		}
		out = append(out, err != nil)
	}
	return out
}

func TestRuntimeDeterministicForSeed(t *testing.T) {
	a, b, c := outcome(t, 7, 64), outcome(t, 7, 64), outcome(t, 8, 64)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different failures:\n%v\n%v", a, b)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("seeds 7 and 8 gave the same 64 outcomes; the seed is not used")
	}
}

func TestTrustedImagesNeverFail(t *testing.T) {
	rt, err := sim.New(sim.Config{Node: "n1", Failures: sim.Failures{Pull: 1, Start: 1, Health: 1}},
		[]sim.ContainerSpec{{Name: "web", Service: "web", Image: "web:1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := rt.Pull(ctx, "web:2"); !errors.Is(err, sim.ErrSimulated) {
		t.Fatalf("pull of a new image with failure probability 1 = %v, want a simulated failure", err)
	}
	if err := rt.Stop(ctx, "web", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, "web"); err != nil {
		t.Fatalf("restart of a container the node ran = %v, want success", err)
	}
	id, err := rt.CreateReplacement(ctx, "web", "web-again", "web:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start of a new container of a trusted image = %v, want success", err)
	}
	c, err := rt.Inspect(ctx, id)
	if err != nil || c.Health != nodeupdater.HealthHealthy {
		t.Fatalf("trusted container health = %q, %v; want healthy", c.Health, err)
	}
}

// TestFleetReplacesAndReverts runs real updaters on simulated nodes over
// real NATS: a good image is replaced everywhere; an image that never turns
// healthy is reverted and the old container serves again. A refused pull
// is tried again, and each retry the node-updater reports arrives as a
// dev.cutover.container.pull.retrying event without the registry's
// password.
func TestFleetReplacesAndReverts(t *testing.T) {
	const password = "s3cr3t-registry-pw"
	tests := []struct {
		name       string
		failures   sim.Failures
		wantType   string
		wantResult string
		wantImage  string
		// failFirst refuses the first pulls of each node (a registry down
		// for a moment); wantPullFailures is what each node then counts.
		failFirst, wantPullFailures int
		// pullAttempts is the node-updaters' setting (0: the default).
		pullAttempts int
		// wantRetries are the attempts each node reports a retry after,
		// all for svc01 (its pull comes first; svc02 then finds the image).
		wantRetries []int
	}{
		{name: "healthy release", wantType: events.TypeNodeUpdateCompleted, wantResult: events.ResultReplaced, wantImage: "app:2"},
		{name: "never healthy", failures: sim.Failures{Health: 1}, wantType: events.TypeNodeUpdateFailed, wantResult: events.ResultReverted, wantImage: "app:1"},
		{name: "start fails", failures: sim.Failures{Start: 1}, wantType: events.TypeNodeUpdateFailed, wantResult: events.ResultReverted, wantImage: "app:1"},
		{name: "pull fails: image not found, no retry", failures: sim.Failures{Pull: 1}, wantType: events.TypeNodeUpdateFailed, wantImage: "app:1", wantPullFailures: 1},
		{name: "registry refuses twice, then serves", failFirst: 2, wantType: events.TypeNodeUpdateCompleted, wantResult: events.ResultReplaced, wantImage: "app:2", wantPullFailures: 2,
			wantRetries: []int{1, 2}},
		{name: "registry down past every retry", failFirst: 100, wantType: events.TypeNodeUpdateFailed, wantImage: "app:1", wantPullFailures: nodeupdater.DefaultPullAttempts,
			wantRetries: []int{1, 2, 3, 4}},
		{name: "registry down for 20 attempts: retries reported sparsely", failFirst: 100, pullAttempts: 20, wantType: events.TypeNodeUpdateFailed, wantImage: "app:1", wantPullFailures: 20,
			wantRetries: []int{1, 2, 3, 4, 8, 16}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := natstest.Start(t)
			nodes := sim.Generate(3, 2, func(string) string { return "app:1" })
			f, err := sim.StartFleet(t.Context(), []jetstream.JetStream{s.JS}, sim.FleetConfig{
				Nodes: nodes, Seed: 1, Failures: tc.failures, FailFirstPulls: tc.failFirst,
				Registry:     "https://cutover:" + password + "@registry.example",
				PullAttempts: tc.pullAttempts, PullBackoff: 5 * time.Millisecond, PullBackoffMax: 10 * time.Millisecond,
				Latency: sim.Latencies{Health: sim.Uniform(0, 5*time.Millisecond)},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.Close(context.WithoutCancel(t.Context())) })

			results := statusEvents(t, s.JS)
			pub := events.NewPublisher(s.JS)
			want := map[string]string{}
			for _, n := range f.Nodes() {
				cmd := events.MustNew(events.Source("test", ""), events.NodeUpdateRequested{Containers: []events.ContainerTarget{
					{Container: "svc01", Image: "app:2"}, {Container: "svc02", Image: "app:2"},
				}}, events.WithNode(n))
				if err := pub.Publish(t.Context(), cmd); err != nil {
					t.Fatal(err)
				}
				want[cmd.ID()] = n
			}
			deadline := time.After(30 * time.Second)
			retries := map[string][]int{}
			for len(want) > 0 {
				select {
				case e := <-results:
					if raw, _ := e.MarshalJSON(); strings.Contains(string(raw), password) {
						t.Fatalf("%s from %s carries the registry password: %s", e.Type(), events.NodeID(e), raw)
					}
					if e.Type() == events.TypeContainerPullRetrying {
						// A node publishes its retries before its answer:
						// the stream delivers them first.
						retries[events.NodeID(e)] = append(retries[events.NodeID(e)], checkRetry(t, e, tc.pullAttempts))
						continue
					}
					if _, ok := want[events.CausationID(e)]; !ok {
						continue
					}
					delete(want, events.CausationID(e))
					if e.Type() != tc.wantType {
						t.Fatalf("node %s answered %s, want %s: %s", events.NodeID(e), e.Type(), tc.wantType, e.Data())
					}
					var rs []events.ContainerResult
					if d, err := events.DataAs[events.NodeUpdateCompleted](e); err == nil && e.Type() == events.TypeNodeUpdateCompleted {
						rs = d.Results
					} else if d, err := events.DataAs[events.NodeUpdateFailed](e); err == nil {
						rs = d.Results
					}
					if tc.wantResult != "" && (len(rs) == 0 || rs[0].Result != tc.wantResult) {
						t.Fatalf("node %s results %+v, want first %s", events.NodeID(e), rs, tc.wantResult)
					}
				case <-deadline:
					t.Fatalf("no answer from %d nodes within 30s", len(want))
				}
			}
			for _, n := range f.Nodes() {
				if !slices.Equal(retries[n], tc.wantRetries) {
					t.Errorf("node %s reported retries after attempts %v, want %v", n, retries[n], tc.wantRetries)
				}
				rt := f.Runtime(n)
				for name, ok := range rt.Serving() {
					if !ok {
						t.Errorf("node %s: container %s does not serve", n, name)
					}
				}
				if img := rt.Images()["svc01"]; img != tc.wantImage {
					t.Errorf("node %s: svc01 runs %s, want %s", n, img, tc.wantImage)
				}
				if got := rt.Stats().PullFailures; got != tc.wantPullFailures {
					t.Errorf("node %s: %d failed pulls, want %d", n, got, tc.wantPullFailures)
				}
				if len(rt.Images()) != 2 {
					t.Errorf("node %s holds containers %v, want exactly svc01 and svc02", n, rt.Images())
				}
			}
		})
	}
}

// checkRetry checks a pull retry event of svc01 (the node-updaters run
// with a 5ms backoff doubled up to 10ms) and returns its attempt.
func checkRetry(t *testing.T, e events.Event, attempts int) int {
	t.Helper()
	d, err := events.DataAs[events.ContainerPullRetrying](e)
	if err != nil {
		t.Fatal(err)
	}
	if attempts == 0 {
		attempts = nodeupdater.DefaultPullAttempts
	}
	wait := int64(10)
	if d.Attempt == 1 {
		wait = 5
	}
	if d.Container != "svc01" || d.Image != "app:2" || d.Attempts != attempts || d.RetryInMs != wait ||
		!strings.Contains(d.Error, "connection refused") || !strings.Contains(d.Error, "cutover:"+redact.Mask+"@registry.example") {
		t.Errorf("retry event from %s: %+v; want svc01 pulling app:2, attempt of %d, next in %dms, the refusal with the password redacted", events.NodeID(e), d, attempts, wait)
	}
	return d.Attempt
}

// statusEvents delivers node completion, failure and pull retry events.
func statusEvents(t *testing.T, js jetstream.JetStream) <-chan events.Event {
	t.Helper()
	cons, err := js.OrderedConsumer(t.Context(), events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectNodeStatusAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan events.Event, 256)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e, err := events.Decode(m.Headers(), m.Data())
		if err == nil && (e.Type() == events.TypeNodeUpdateCompleted || e.Type() == events.TypeNodeUpdateFailed || e.Type() == events.TypeContainerPullRetrying) {
			ch <- e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return ch
}
