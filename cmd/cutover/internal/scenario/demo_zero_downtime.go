package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// ZeroDowntimeOptions are the flags of cutover demo-zero-downtime.
type ZeroDowntimeOptions struct {
	// Rate is the load in requests per second.
	Rate int
	// MinLoad is the least time the load runs in each run.
	MinLoad time.Duration
	// Baseline also measures the no-drain stop-first baseline.
	Baseline bool
	// Retries turns on HAProxy's retries and redispatch in both runs.
	Retries bool
	// Debug shows the services' logs.
	Debug bool
	// Version is the version the node-updaters report (the binary's).
	Version string
}

// DemoZeroDowntime rolls three replicas behind a real HAProxy from v1 to
// v2 under a constant load, first with cutover's drain, then with a plain
// stop-first replacement without drain, and prints both results. It exits 0
// only if cutover lost no request and the upgrade completed.
func DemoZeroDowntime(ctx context.Context, out io.Writer, o ZeroDowntimeOptions) error {
	d, err := startHAProxyDemo(ctx, out, "demo-zero-downtime", "cutover-zd", o.Rate, o.MinLoad,
		fmt.Sprintf("cutover demo-zero-downtime: roll 3 replicas of 'web' behind HAProxy from v1 to v2 under %d requests/s\n", o.Rate),
		testkit.BuildDemoApp, "web", v1v2...)
	if err != nil {
		return err
	}
	defer d.close()
	cli, run, images := d.cli, d.run, d.images

	type variant struct {
		name  string
		drain bool
	}
	variants := []variant{{"cutover: drain through the lb-agent before each stop", true}}
	if o.Baseline {
		variants = append(variants, variant{"baseline: stop-first without drain (what Watchtower and kolla-ansible do)", false})
	}
	var results []zdResult
	for i, v := range variants {
		fmt.Fprintf(out, "\n[%d/%d] %s\n", i+1, len(variants), v.name)
		dir := filepath.Join(d.kit.work, fmt.Sprintf("run%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		res, err := runZeroDowntime(ctx, cli, zdConfig{
			runConfig: runConfig{Run: fmt.Sprintf("%s-%d", run, i), V1: images["v1"], V2: images["v2"], Rate: o.Rate, MinLoad: o.MinLoad, WorkDir: dir,
				Events: indent{out}, Progress: out, Logger: Logger(o.Debug), Version: o.Version},
			Drain: v.drain, NoRetry: !o.Retries,
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
		return exit.Error{Code: 1}
	}
	fmt.Fprintf(out, "\ndemo passed: cutover replaced every replica and lost none of %d requests\n", cut.Load.Sent)
	return nil
}
