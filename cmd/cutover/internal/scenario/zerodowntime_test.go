package scenario

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/harness/testkit"
)

const (
	zdTestRate    = 250              // requests per second, through HAProxy
	zdTestMinLoad = 25 * time.Second // with zdTestRate: at least 6,250 requests
	// zdTestDrainDelay makes each drain take a second, as a long request
	// would: a node-updater that did not wait for the acknowledgement would
	// stop the container well before it (the stop follows the draining
	// event within milliseconds otherwise).
	zdTestDrainDelay = time.Second
)

// testImages builds the demo app's images of versions into an in-process
// registry, or skips when Docker or HAProxy is missing. It returns the
// engine, the run's name (prefix and a number) and the images; the
// images and anything a failed run left are removed at the end of the test.
func testImages(tb testing.TB, prefix string, versions ...imageVersion) (*client.Client, string, map[string]testkit.Image) {
	tb.Helper()
	ctx := tb.Context()
	if _, err := exec.LookPath("haproxy"); err != nil {
		tb.Skip("haproxy not installed: run scripts/install-haproxy.sh (make test does)")
	}
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		tb.Skipf("docker engine not reachable: %v", err)
	}
	run := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000_000)
	k, err := newKit(ctx, "cutover-test-", testkit.BuildDemoApp)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { k.close(context.Background()) })
	imgs, err := k.push(ctx, io.Discard, run+"/web", map[string]string{testkit.LabelTest: run}, versions...)
	tb.Cleanup(func() {
		removeImages(context.Background(), cli, "", testkit.LabelTest+"="+run, imgs)
		cli.Close()
	})
	if err != nil {
		tb.Fatal(err)
	}
	return cli, run, imgs
}

// zdImages builds the demo app's v1 and v2 images (Docker HEALTHCHECK,
// healthy mode), or skips when Docker or HAProxy is missing.
func zdImages(tb testing.TB) (*client.Client, string, testkit.Image, testkit.Image) {
	cli, run, imgs := testImages(tb, "zd", v1v2...)
	return cli, run, imgs["v1"], imgs["v2"]
}

// zdRun runs the scenario once, with or without drain, failing the test on
// a scenario error. The events and services' logs are shown only on failure.
func zdRun(tb testing.TB, cli *client.Client, run string, v1, v2 testkit.Image, drain, noRetry bool, drainDelay time.Duration) zdResult {
	tb.Helper()
	var logs, evs bytes.Buffer
	mode := "nodrain"
	if drain {
		mode = "drain"
	}
	if noRetry {
		mode += "-noretry"
	}
	res, err := runZeroDowntime(tb.Context(), cli, zdConfig{
		runConfig: runConfig{Run: run + "-" + mode, V1: v1, V2: v2, Rate: zdTestRate, MinLoad: zdTestMinLoad, WorkDir: tb.TempDir(),
			Events: &evs, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))},
		Drain: drain, NoRetry: noRetry, DrainDelay: drainDelay,
	})
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("%s run events:\n%s\nlogs:\n%s", mode, &evs, &logs)
		}
	})
	if err != nil {
		tb.Fatalf("%s run: %v", mode, err)
	}
	return res
}

// TestZeroDowntimeRollingUpdateBehindHAProxy replaces the 3 replicas of a
// service behind a real HAProxy under a constant load, twice in the same
// run: with cutover's drain (the lb-agent takes each replica out of HAProxy
// and the node-updater waits for its acknowledgement before stopping it),
// then a plain stop-first replacement without drain (what Watchtower and
// kolla-ansible do). Cutover must lose no request; the baseline's losses
// are logged for docs/benchmarks.md.
//
// HAProxy's retries and redispatch are off in both runs: with them, a
// request sent to a replica that is gone is retried on another after a
// connect timeout or a SYN retransmission, which hides the baseline's
// losses as one-second stalls (BenchmarkZeroDowntime measures both
// configurations). Without them every request HAProxy sends to a stopped
// replica fails, so zero failures here is owed to the drain alone; the
// baseline run shows the same assertion would catch a replacement without
// it (it loses requests).
func TestZeroDowntimeRollingUpdateBehindHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the zero-downtime run takes about a minute")
	}
	cli, run, v1, v2 := zdImages(t)

	cut := zdRun(t, cli, run, v1, v2, true, true, zdTestDrainDelay)
	t.Log(cut.summary())
	if cut.UpgradeErr != nil {
		t.Fatal(cut.UpgradeErr)
	}
	if cut.Load.Sent < 5000 || cut.Load.Sent < int(zdTestMinLoad.Seconds())*zdTestRate*9/10 {
		t.Errorf("only %d requests were sent; want at least 5,000 at %d/s", cut.Load.Sent, zdTestRate)
	}
	if cut.Load.Failed != 0 || cut.Load.OK != cut.Load.Sent {
		t.Errorf("cutover lost %d of %d requests (causes %v); want none", cut.Load.Failed, cut.Load.Sent, cut.Load.Errors)
	}
	for name, v := range cut.Images {
		if v != "v2" {
			t.Errorf("%s runs %s after the upgrade, want v2", name, v)
		}
	}
	if len(cut.Images) != zdReplicas {
		t.Errorf("checked %d containers, want %d", len(cut.Images), zdReplicas)
	}
	// The node-updater waited for the load balancer: each container was
	// announced draining, acknowledged drained, and only then stopped.
	for name := range cut.Images {
		tl := cut.Timeline[name]
		switch {
		case tl == nil || tl.Draining.IsZero() || tl.Drained.IsZero() || tl.Stopped.IsZero() || tl.Replaced.IsZero():
			t.Errorf("%s: incomplete timeline %+v; want draining, drained, stop and replaced", name, tl)
		case !tl.Draining.Before(tl.Drained) || !tl.Drained.Before(tl.Stopped) || !tl.Stopped.Before(tl.Replaced) || tl.Stopped.Sub(tl.Draining) < zdTestDrainDelay:
			t.Errorf("%s: draining %s, drained %s, stopped %s, replaced %s; want them in that order, the stop at least %v after draining",
				name, tl.Draining.Format(time.StampMicro), tl.Drained.Format(time.StampMicro), tl.Stopped.Format(time.StampMicro), tl.Replaced.Format(time.StampMicro), zdTestDrainDelay)
		default:
			t.Logf("%s: drained %v after draining, stopped %v after the ack", name, tl.Drained.Sub(tl.Draining).Round(time.Millisecond), tl.Stopped.Sub(tl.Drained).Round(time.Millisecond))
		}
	}

	base := zdRun(t, cli, run, v1, v2, false, true, 0)
	t.Log(base.summary())
	if base.UpgradeErr != nil {
		t.Fatal(base.UpgradeErr)
	}
	if base.Load.Failed > 0 {
		t.Logf("baseline failure causes: %v", base.Load.Errors)
	}
	for name, tl := range base.Timeline {
		if !tl.Drained.IsZero() {
			t.Errorf("baseline %s was acknowledged drained; the baseline must run without the lb-agent", name)
		}
	}
	t.Logf("BENCH zero-downtime: cutover %d/%d failed (p50 %v p99 %v); no-drain baseline %d/%d failed (p50 %v p99 %v)",
		cut.Load.Failed, cut.Load.Sent, cut.Load.P50, cut.Load.P99, base.Load.Failed, base.Load.Sent, base.Load.P50, base.Load.P99)
}

// BenchmarkZeroDowntime measures the same rolling update under the same
// load in four variants, in the same run: cutover's drain and the no-drain
// stop-first baseline, each with HAProxy's retries and redispatch on (the
// defaults of cutover's and kolla-ansible's HAProxy configurations) and off.
// Each iteration does all four (about two minutes); run it with
// -benchtime=1x. Latency percentiles are of successful requests.
func BenchmarkZeroDowntime(b *testing.B) {
	cli, run, v1, v2 := zdImages(b)
	variants := []struct {
		key            string
		drain, noRetry bool
	}{
		{"cutover", true, false},
		{"nodrain", false, false},
		{"cutover-noretry", true, true},
		{"nodrain-noretry", false, true},
	}
	type totals struct {
		failed, sent int
		p50, p99     time.Duration
	}
	sum := map[string]*totals{}
	i := 0
	for b.Loop() {
		for _, v := range variants {
			r := zdRun(b, cli, fmt.Sprintf("%s-%d", run, i), v1, v2, v.drain, v.noRetry, 0)
			if r.UpgradeErr != nil {
				b.Fatalf("%s: %v", r.mode(), r.UpgradeErr)
			}
			b.Log(r.summary())
			if sum[v.key] == nil {
				sum[v.key] = &totals{}
			}
			t := sum[v.key]
			t.failed, t.sent = t.failed+r.Load.Failed, t.sent+r.Load.Sent
			t.p50, t.p99 = max(t.p50, r.Load.P50), max(t.p99, r.Load.P99)
		}
		i++
	}
	n := float64(i)
	for _, v := range variants {
		t := sum[v.key]
		b.ReportMetric(float64(t.failed)/n, v.key+"-failed/op")
		b.ReportMetric(float64(t.sent)/n, v.key+"-requests/op")
		b.ReportMetric(float64(t.p50.Microseconds())/1000, v.key+"-p50-ms")
		b.ReportMetric(float64(t.p99.Microseconds())/1000, v.key+"-p99-ms")
	}
}
