package scenario

import (
	"context"
	"fmt"
	"io"
	"time"

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
	d, err := startHAProxyDemo(ctx, out, "demo-expand-contract", "cutover-ec", o.Rate, o.MinLoad,
		fmt.Sprintf("cutover demo-expand-contract: roll 3 replicas of 'web' sharing one SQLite database from v1 to v2 behind HAProxy,\n"+
			"schema 1 -> 2 (expand, before the roll) -> 3 (contract, after it), under %d writes/s\n", o.Rate),
		testkit.BuildDemoApp, "web", ecVersions...)
	if err != nil {
		return err
	}
	defer d.close()

	res, err := runExpandContract(ctx, d.cli, ecConfig{runConfig{
		Run: d.run, V1: d.images["v1"], V2: d.images["v2"], Rate: o.Rate, MinLoad: o.MinLoad, WorkDir: d.kit.work,
		Events: indent{out}, Progress: out, Logger: Logger(o.Debug), Version: o.Version,
	}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nload: %s\n%s\n", res.Load, res.dataSummary())
	if len(res.Load.Errors) > 0 {
		fmt.Fprintf(out, "failures by cause: %s\n", render.Counts(res.Load.Errors))
	}
	return verdict(out, res.problems(), fmt.Sprintf("demo passed: expand, roll with v1 and v2 side by side, contract; no request failed and all %d acknowledged writes are in the database", len(res.Load.Acked)))
}
