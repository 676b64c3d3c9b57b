package scenario

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// ExpandContractOptions are the flags of cutover demo-expand-contract.
type ExpandContractOptions struct {
	// Rate is the load in writes per second.
	Rate int
	// MinLoad is the least time the load runs.
	MinLoad time.Duration
	// Debug shows the services' logs.
	Debug bool
	// Version is the version the node-updaters report (the binary's).
	Version string
}

// DemoExpandContract rolls three replicas of the demo app that share one
// SQLite database from v1 to v2 behind a real HAProxy, with an expand
// migration before the roll and a contract after it, under a
// write-and-verify load, and prints what it checked. It exits 0 only if no
// request failed and every acknowledged write is in the database.
func DemoExpandContract(ctx context.Context, out io.Writer, o ExpandContractOptions) error {
	if o.Rate <= 0 || o.MinLoad <= 0 {
		return exit.Usagef("--rate and --duration must be positive")
	}
	cli, err := haproxyDemoEngine(ctx, "demo-expand-contract")
	if err != nil {
		return err
	}
	defer cli.Close()
	run := fmt.Sprintf("cutover-ec%d", time.Now().UnixNano()%1_000_000)
	label := testkit.LabelTest + "=" + run
	fmt.Fprintf(out, "cutover demo-expand-contract: roll 3 replicas of 'web' sharing one SQLite database from v1 to v2 behind HAProxy,\n"+
		"schema 1 -> 2 (expand, before the roll) -> 3 (contract, after it), under %d writes/s\n", o.Rate)
	k, err := newKit(ctx, "cutover-demo-ec-", testkit.BuildDemoApp)
	if err != nil {
		return err
	}
	defer k.close(ctx)
	images, err := k.push(ctx, out, run+"/web", map[string]string{testkit.LabelTest: run}, ecVersions...)
	defer removeImages(ctx, cli, "demo-expand-contract", label, images)
	if err != nil {
		return err
	}

	res, err := runExpandContract(ctx, cli, ecConfig{
		Run: run, V1: images["v1"], V2: images["v2"], Rate: o.Rate, MinLoad: o.MinLoad, WorkDir: k.work,
		Events: indent{out}, Progress: out, Logger: Logger(o.Debug), Version: o.Version,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nload: %s\n%s\n", res.Load, res.dataSummary())
	if len(res.Load.Errors) > 0 {
		fmt.Fprintf(out, "failures by cause: %s\n", render.Counts(res.Load.Errors))
	}
	if ps := res.problems(); len(ps) > 0 {
		fmt.Fprintln(out, "\ndemo FAILED:")
		for _, p := range ps {
			fmt.Fprintln(out, "  "+p)
		}
		return exit.Error{Code: 1}
	}
	fmt.Fprintf(out, "\ndemo passed: expand, roll with v1 and v2 side by side, contract; no request failed and all %d acknowledged writes are in the database\n", len(res.Load.Acked))
	return nil
}
