package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// demoExpandContractOptions holds the flags of cutover demo-expand-contract.
type demoExpandContractOptions struct {
	rate    int
	minLoad time.Duration
	debug   bool
}

func newDemoExpandContractCmd() *cobra.Command {
	var o demoExpandContractOptions
	cmd := &cobra.Command{
		Use:     "demo-expand-contract [--rate N] [--duration D]",
		Short:   "v1 and v2 share one SQLite database through expand -> roll -> contract under load",
		Example: "  cutover demo-expand-contract --rate 100 --duration 25s",
		Args:    noArgs,
	}
	cmd.Flags().IntVar(&o.rate, "rate", 100, "writes per second sent through HAProxy (each read back and an earlier one re-read: 3 requests)")
	cmd.Flags().DurationVar(&o.minLoad, "duration", 25*time.Second, "least time the load runs (it also runs until the upgrade ends)")
	cmd.Flags().BoolVar(&o.debug, "debug", false, "show the services' logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemoExpandContract(cmd.Context(), cmd.OutOrStdout(), o)
	}
	return cmd
}

// runDemoExpandContract rolls three replicas of the demo app that share one
// SQLite database from v1 to v2 behind a real HAProxy, with an expand
// migration before the roll and a contract after it, under a
// write-and-verify load, and prints what it checked. It exits 0 only if no
// request failed and every acknowledged write is in the database.
func runDemoExpandContract(ctx context.Context, out io.Writer, o demoExpandContractOptions) error {
	if o.rate <= 0 || o.minLoad <= 0 {
		return usageErrorf("--rate and --duration must be positive")
	}
	cli, err := haproxyDemoEngine(ctx, "demo-expand-contract")
	if err != nil {
		return err
	}
	defer cli.Close()
	run := fmt.Sprintf("cutover-ec%d", time.Now().UnixNano()%1_000_000)
	label := testkit.LabelTest + "=" + run
	work, err := os.MkdirTemp("", "cutover-demo-ec-")
	if err != nil {
		return fmt.Errorf("create a work directory: %w", err)
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(out, "cutover demo-expand-contract: roll 3 replicas of 'web' sharing one SQLite database from v1 to v2 behind HAProxy,\n"+
		"schema 1 -> 2 (expand, before the roll) -> 3 (contract, after it), under %d writes/s\n", o.rate)
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
	defer removeDemo(ctx, cli, "demo-expand-contract", label, images)
	for _, v := range []struct{ tag, schema string }{{"v1", "1"}, {"v2", "2"}} {
		img, err := reg.Push(ctx, bin, testkit.ImageSpec{
			Repo: run + "/web", Tag: v.tag, Version: v.tag, Healthcheck: true,
			Env: []string{"DEMO_DB_SCHEMA=" + v.schema}, Labels: map[string]string{testkit.LabelTest: run},
		})
		if err != nil {
			return err
		}
		images[v.tag] = img
		fmt.Fprintf(out, "  built image %s (%s, schema generation %s)\n", img.Ref, short(img.ID), v.schema)
	}

	res, err := runExpandContract(ctx, cli, ecConfig{
		Run: run, V1: images["v1"], V2: images["v2"], Rate: o.rate, MinLoad: o.minLoad, WorkDir: work,
		Events: indent{out}, Progress: out, Logger: demoLogger(o.debug),
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
		return exitError{1}
	}
	fmt.Fprintf(out, "\ndemo passed: expand, roll with v1 and v2 side by side, contract; no request failed and all %d acknowledged writes are in the database\n", len(res.Load.Acked))
	return nil
}
