package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/openstack"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// demoOpenStackOptions holds the flags of cutover demo-openstack.
type demoOpenStackOptions struct {
	mariadb string
	rate    int
	minLoad time.Duration
	debug   bool
}

func newDemoOpenStackCmd() *cobra.Command {
	var o demoOpenStackOptions
	cmd := &cobra.Command{
		Use:     "demo-openstack [--mariadb URL] [--rate N] [--duration D]",
		Short:   "an OpenStack-shaped service on MariaDB: db-sync expand/migrate/contract under load, then a failing db-sync restored",
		Example: "  make mariadb && cutover demo-openstack --mariadb mysql://cutover:cutover@127.0.0.1:3306/cutover",
		Args:    noArgs,
	}
	def := os.Getenv("CUTOVER_TEST_MARIADB")
	if def == "" {
		def = "mysql://cutover:cutover@127.0.0.1:3306/cutover"
	}
	cmd.Flags().StringVar(&o.mariadb, "mariadb", def, "the MariaDB server (make mariadb starts one); the demo creates and drops a database of its own on it")
	cmd.Flags().IntVar(&o.rate, "rate", 50, "writes per second through HAProxy (each read back, and an earlier one re-read)")
	cmd.Flags().DurationVar(&o.minLoad, "duration", 20*time.Second, "least time the load of the v1 -> v2 upgrade runs")
	cmd.Flags().BoolVar(&o.debug, "debug", false, "show the services' logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemoOpenStack(cmd.Context(), cmd.OutOrStdout(), o)
	}
	return cmd
}

// runDemoOpenStack builds the identity service's three releases, runs the
// OpenStack scenario (internal/openstack) and prints its summary; it exits
// 0 only if no request failed and no acknowledged write was lost.
func runDemoOpenStack(ctx context.Context, out io.Writer, o demoOpenStackOptions) error {
	if o.rate <= 0 || o.minLoad <= 0 {
		return usageErrorf("--rate and --duration must be positive")
	}
	cli, err := haproxyDemoEngine(ctx, "demo-openstack")
	if err != nil {
		return err
	}
	defer cli.Close()
	run := fmt.Sprintf("cutover-os%d", time.Now().UnixNano()%1_000_000)
	work, err := os.MkdirTemp("", "cutover-demo-os-")
	if err != nil {
		return fmt.Errorf("create a work directory: %w", err)
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(out, "cutover demo-openstack: 3 replicas of an identity service (keystone-like) on MariaDB behind HAProxy;\n"+
		"its schema is migrated by its own db-sync in one-off bootstrap containers of the new image, as Kolla runs keystone-manage db_sync\n")
	bin, err := testkit.BuildIdentityApp(ctx, filepath.Join(work, "bin"))
	if err != nil {
		return err
	}
	reg, err := testkit.StartRegistry(ctx)
	if err != nil {
		return err
	}
	defer reg.Close(context.WithoutCancel(ctx))
	images := map[string]testkit.Image{}
	for _, v := range []string{"v1", "v2", "v3"} {
		img, err := reg.Push(ctx, bin, testkit.ImageSpec{Repo: run + "/keystone", Tag: v, Version: v, Healthcheck: true, Labels: map[string]string{testkit.LabelTest: run}})
		if err != nil {
			return err
		}
		images[v] = img
		fmt.Fprintf(out, "  built image %s (%s)\n", img.Ref, short(img.ID))
	}
	res, err := openstack.Run(ctx, cli, openstack.Config{
		Run: run, Server: o.mariadb, V1: images["v1"], V2: images["v2"], V3: images["v3"], Rate: o.rate, MinLoad: o.minLoad,
		WorkDir: work, Events: out, Progress: out, Logger: demoLogger(o.debug),
	})
	if err != nil {
		return err
	}
	res.Summary(out)
	if ps := res.Problems(); len(ps) > 0 {
		fmt.Fprintln(out, "\ndemo FAILED:")
		for _, p := range ps {
			fmt.Fprintln(out, "  "+p)
		}
		return exitError{1}
	}
	fmt.Fprintln(out, "\ndemo passed: 0 failed requests, 0 lost writes; v2 migrated expand -> roll -> migrate -> contract, v3's failed db-sync restored while v2 served")
	return nil
}
