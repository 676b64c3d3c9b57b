package nodeupdater_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// benchMinHealthy is the health rule of both sides of BenchmarkReplace: the
// images have no HEALTHCHECK, so "running without restart for 200ms".
const benchMinHealthy = 200 * time.Millisecond

// BenchmarkReplace compares one stop-first replacement through the
// node-updater (command event published -> completion event received, over
// real NATS, on the real engine) with the same Docker API calls made
// directly (inspect, stop, rename, create, start, wait running for
// min_healthy, remove), alternating between the same two images without a
// HEALTHCHECK, interleaved in the same run. It reports the median of each
// side and the overhead in percent.
//
//	go test -run '^$' -bench BenchmarkReplace -benchtime 15x ./services/node-updater
func BenchmarkReplace(b *testing.B) {
	e := newEnv(b)
	v1Plain := e.push(testkit.ImageSpec{Tag: "v1-plain", Version: "v1"})
	for _, ref := range []string{v1Plain.Ref, e.v2Plain.Ref} {
		if err := testkit.PullImage(b.Context(), e.cli, ref); err != nil {
			b.Fatal(err)
		}
	}
	images := []string{e.v2Plain.Ref, v1Plain.Ref}

	node := "bench-" + e.runID
	viaName, directName := e.prefix+"-bench-nu", e.prefix+"-bench-direct"
	for _, name := range []string{viaName, directName} {
		_, err := testkit.CreateContainer(b.Context(), e.cli, testkit.ContainerOpts{
			Name: name, Image: v1Plain.Ref, Node: node, Service: "bench",
			Labels: map[string]string{testkit.LabelTest: e.runID},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	done := completions(b, e, node)
	e.updater(b, node)

	var via, direct []time.Duration
	b.ResetTimer()
	for i := range b.N {
		image := images[i%2]

		start := time.Now()
		cmd := e.command(b, node, events.NodeUpdateRequested{Containers: []events.ContainerTarget{{
			Container: viaName, Image: image, MinHealthyMs: benchMinHealthy.Milliseconds(),
		}}})
		awaitCompletion(b, done, cmd)
		via = append(via, time.Since(start))

		start = time.Now()
		if err := directReplace(b.Context(), e.cli, directName, image); err != nil {
			b.Fatal(err)
		}
		direct = append(direct, time.Since(start))
	}
	b.StopTimer()
	mv, md := median(via), median(direct)
	b.ReportMetric(ms(mv), "updater-ms")
	b.ReportMetric(ms(md), "direct-ms")
	b.ReportMetric(100*(ms(mv)-ms(md))/ms(md), "overhead-%")
	b.ReportMetric(0, "ns/op") // the medians above are the figures
}

// completions delivers the node's completion and failure events.
func completions(tb testing.TB, e *env, node string) <-chan events.Event {
	tb.Helper()
	cons, err := e.nats.JS.OrderedConsumer(tb.Context(), events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.NodeStatusSubject(node)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		tb.Fatal(err)
	}
	ch := make(chan events.Event, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(m.Headers(), m.Data())
		if err == nil && (ev.Type() == events.TypeNodeUpdateCompleted || ev.Type() == events.TypeNodeUpdateFailed) {
			ch <- ev
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cc.Stop)
	return ch
}

func awaitCompletion(tb testing.TB, ch <-chan events.Event, cmd events.Event) {
	tb.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case ev := <-ch:
			if events.CausationID(ev) != cmd.ID() {
				continue
			}
			if ev.Type() != events.TypeNodeUpdateCompleted {
				tb.Fatalf("command failed: %s", ev.Data())
			}
			return
		case <-timeout:
			tb.Fatal("no completion within 2m")
		}
	}
}

// directReplace is the baseline: a stop-first replacement of name by image
// with plain engine calls and no events, inventory or pull.
func directReplace(ctx context.Context, cli *client.Client, name, image string) error {
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	old := res.Container
	timeout := 10
	if _, err := cli.ContainerStop(ctx, old.ID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return err
	}
	if _, err := cli.ContainerRename(ctx, old.ID, client.ContainerRenameOptions{NewName: name + "-direct-old"}); err != nil {
		return err
	}
	cfg := *old.Config
	cfg.Image, cfg.Hostname, cfg.Env = image, "", nil
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &cfg, HostConfig: old.HostConfig})
	if err != nil {
		return err
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	for {
		c, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if !c.Container.State.Running {
			return fmt.Errorf("%s exited", name)
		}
		started, err := time.Parse(time.RFC3339Nano, c.Container.State.StartedAt)
		if err != nil {
			return err
		}
		if left := benchMinHealthy - time.Since(started); left > 0 {
			time.Sleep(left) // the measured rule itself, not synchronisation
			continue
		}
		break
	}
	_, err = cli.ContainerRemove(ctx, old.ID, client.ContainerRemoveOptions{Force: true})
	return err
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkIdleRSS starts the node-updater binary as its own process with
// one container to watch, lets it idle for 5 seconds after start-up and
// reports its resident memory (VmRSS).
//
//	go test -run '^$' -bench BenchmarkIdleRSS -benchtime 1x ./services/node-updater
func BenchmarkIdleRSS(b *testing.B) {
	e := newEnv(b)
	node := "rss-" + e.runID
	if _, err := testkit.CreateContainer(b.Context(), e.cli, testkit.ContainerOpts{
		Name: e.prefix + "-rss", Image: e.v1.Ref, Node: node, Service: "web",
		Labels: map[string]string{testkit.LabelTest: e.runID},
	}); err != nil {
		b.Fatal(err)
	}
	p := e.startProcess(b, node, "")
	poll(b, 30*time.Second, "the updater's inventory", func() bool {
		inv, err := e.nats.JS.KeyValue(b.Context(), events.BucketNodes)
		if err != nil {
			return false
		}
		_, err = inv.Get(b.Context(), node)
		return err == nil
	})
	idle := time.NewTimer(5 * time.Second) // the idle period is what is measured
	<-idle.C
	rss, err := vmRSS(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(rss)/1024, "idle-rss-MB")
	b.ReportMetric(0, "ns/op")
}

// vmRSS reads a process's resident set size in KiB.
func vmRSS(pid int) (int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
