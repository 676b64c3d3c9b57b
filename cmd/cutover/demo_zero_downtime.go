package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// demoZeroDowntimeOptions holds the flags of cutover demo-zero-downtime.
type demoZeroDowntimeOptions struct {
	rate     int
	minLoad  time.Duration
	baseline bool
	retries  bool
	debug    bool
}

func newDemoZeroDowntimeCmd() *cobra.Command {
	var o demoZeroDowntimeOptions
	cmd := &cobra.Command{
		Use:     "demo-zero-downtime [--rate N] [--duration D]",
		Short:   "roll 3 replicas behind a real HAProxy under load, with drain and without",
		Example: "  cutover demo-zero-downtime --rate 250 --haproxy-retries",
		Args:    noArgs,
	}
	cmd.Flags().IntVar(&o.rate, "rate", 250, "requests per second sent through HAProxy")
	cmd.Flags().DurationVar(&o.minLoad, "duration", 25*time.Second, "least time the load runs in each run (it also runs until the upgrade ends)")
	cmd.Flags().BoolVar(&o.baseline, "baseline", true, "also measure the no-drain stop-first baseline")
	cmd.Flags().BoolVar(&o.retries, "haproxy-retries", false, "turn on HAProxy's retries and redispatch in both runs (off by default, so HAProxy does not hide\nrequests sent to a stopped replica by retrying them elsewhere after a stall)")
	cmd.Flags().BoolVar(&o.debug, "debug", false, "show the services' logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemoZeroDowntime(cmd.Context(), cmd.OutOrStdout(), o)
	}
	return cmd
}

// runDemoZeroDowntime rolls three replicas behind a real HAProxy from v1 to
// v2 under a constant load, first with cutover's drain, then with a plain
// stop-first replacement without drain, and prints both results. It exits 0
// only if cutover lost no request and the upgrade completed.
func runDemoZeroDowntime(ctx context.Context, out io.Writer, o demoZeroDowntimeOptions) error {
	if o.rate <= 0 || o.minLoad <= 0 {
		return usageErrorf("--rate and --duration must be positive")
	}
	cli, err := haproxyDemoEngine(ctx, "demo-zero-downtime")
	if err != nil {
		return err
	}
	defer cli.Close()
	run := fmt.Sprintf("cutover-zd%d", time.Now().UnixNano()%1_000_000)
	label := testkit.LabelTest + "=" + run

	work, err := os.MkdirTemp("", "cutover-demo-zd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(out, "cutover demo-zero-downtime: roll 3 replicas of 'web' behind HAProxy from v1 to v2 under %d requests/s\n", o.rate)
	bin, err := testkit.BuildDemoApp(ctx, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	reg, err := testkit.StartRegistry(ctx)
	if err != nil {
		return err
	}
	defer reg.Close(context.WithoutCancel(ctx))
	images := map[string]testkit.Image{}
	for _, v := range []string{"v1", "v2"} {
		img, err := reg.Push(ctx, bin, testkit.ImageSpec{Repo: run + "/web", Tag: v, Version: v, Healthcheck: true, Labels: map[string]string{testkit.LabelTest: run}})
		if err != nil {
			return err
		}
		images[v] = img
		fmt.Fprintf(out, "  built image %s (%s)\n", img.Ref, short(img.ID))
	}
	defer removeDemo(ctx, cli, "demo-zero-downtime", label, images)

	type variant struct {
		name  string
		drain bool
	}
	variants := []variant{{"cutover: drain through the lb-agent before each stop", true}}
	if o.baseline {
		variants = append(variants, variant{"baseline: stop-first without drain (what Watchtower and kolla-ansible do)", false})
	}
	var results []zdResult
	for i, v := range variants {
		fmt.Fprintf(out, "\n[%d/%d] %s\n", i+1, len(variants), v.name)
		dir := filepath.Join(work, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		res, err := runZeroDowntime(ctx, cli, zdConfig{
			Run: fmt.Sprintf("%s-%d", run, i), V1: images["v1"], V2: images["v2"], Drain: v.drain, NoRetry: !o.retries,
			Rate: o.rate, MinLoad: o.minLoad, WorkDir: dir,
			Events: indent{out}, Progress: out, Logger: demoLogger(o.debug),
		})
		if err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
		results = append(results, res)
		fmt.Fprintf(out, "  result: %s\n", res.Load)
	}

	fmt.Fprintln(out, "\nsummary:")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  run\trequests\tok\tfailed\tp50\tp99\tmax\tupgrade\tcontainers")
	for _, r := range results {
		up := "completed"
		if r.UpgradeErr != nil {
			up = "FAILED"
		}
		v2 := 0
		for _, v := range r.Images {
			if v == "v2" {
				v2++
			}
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d/%d on v2\n", r.mode(), r.Load.Sent, r.Load.OK, r.Load.Failed,
			render.Duration(r.Load.P50), render.Duration(r.Load.P99), render.Duration(r.Load.Max), up, v2, zdReplicas)
	}
	tw.Flush()
	for _, r := range results {
		if len(r.Load.Errors) > 0 {
			fmt.Fprintf(out, "  %s failures by cause: %s\n", r.mode(), render.Counts(r.Load.Errors))
		}
	}
	cut := results[0]
	onV2 := 0
	for _, v := range cut.Images {
		if v == "v2" {
			onV2++
		}
	}
	if cut.UpgradeErr != nil || cut.Load.Failed != 0 || cut.Load.Sent == 0 || onV2 != zdReplicas {
		fmt.Fprintf(out, "\ndemo FAILED: cutover lost %d of %d requests (upgrade: %v)\n", cut.Load.Failed, cut.Load.Sent, cut.UpgradeErr)
		return exitError{1}
	}
	fmt.Fprintf(out, "\ndemo passed: cutover replaced every replica and lost none of %d requests\n", cut.Load.Sent)
	return nil
}

// indent prefixes each write (one event line) with two spaces.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := i.w.Write(append([]byte("  "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// haproxyDemoEngine checks what the HAProxy demos need: a Docker engine and
// haproxy on PATH. It says what is missing and how to get it, as exit code 3.
func haproxyDemoEngine(ctx context.Context, cmd string) (*client.Client, error) {
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cutover %s: no Docker engine is reachable (%v).\n"+
			"Start Docker (e.g. 'sudo systemctl start docker'), or point DOCKER_HOST at an engine, then run 'make %s' again.\n", cmd, err, cmd)
		return nil, exitError{3}
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		cli.Close()
		fmt.Fprintf(os.Stderr, "cutover %s: %v.\nInstall it with 'sudo scripts/install-haproxy.sh', then run 'make %s' again.\n", cmd, err, cmd)
		return nil, exitError{3}
	}
	return cli, nil
}

// removeDemo removes what a demo run labelled with label left, and its images.
func removeDemo(ctx context.Context, cli *client.Client, cmd, label string, images map[string]testkit.Image) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_ = testkit.Cleanup(cctx, cli, label)
	for _, img := range images {
		if _, err := cli.ImageRemove(cctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			fmt.Fprintf(os.Stderr, "cutover %s: remove image %s: %v\n", cmd, short(img.ID), err)
		}
	}
}
