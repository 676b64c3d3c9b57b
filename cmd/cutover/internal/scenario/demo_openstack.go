package scenario

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// OpenStackOptions are the flags of cutover demo-openstack.
type OpenStackOptions struct {
	// MariaDB is the server's URL; the demo creates and drops a database
	// of its own on it.
	MariaDB string
	// Rate is the load in writes per second.
	Rate int
	// MinLoad is the least time the load of the v1 -> v2 upgrade runs.
	MinLoad time.Duration
	// Debug shows the services' logs.
	Debug bool
}

// DemoOpenStack builds the identity service's three releases, runs the
// OpenStack scenario (openstack.go) and prints its summary; it exits
// 0 only if no request failed and no acknowledged write was lost.
func DemoOpenStack(ctx context.Context, out io.Writer, o OpenStackOptions) error {
	if o.Rate <= 0 || o.MinLoad <= 0 {
		return exit.Usagef("--rate and --duration must be positive")
	}
	cli, err := haproxyDemoEngine(ctx, "demo-openstack")
	if err != nil {
		return err
	}
	defer cli.Close()
	run := fmt.Sprintf("cutover-os%d", time.Now().UnixNano()%1_000_000)
	fmt.Fprintf(out, "cutover demo-openstack: 3 replicas of an identity service (keystone-like) on MariaDB behind HAProxy;\n"+
		"its schema is migrated by its own db-sync in one-off bootstrap containers of the new image, as Kolla runs keystone-manage db_sync\n")
	k, err := newKit(ctx, "cutover-demo-os-", testkit.BuildIdentityApp)
	if err != nil {
		return err
	}
	defer k.close(ctx)
	images, err := k.push(ctx, out, run+"/keystone", map[string]string{testkit.LabelTest: run}, imageVersion{tag: "v1"}, imageVersion{tag: "v2"}, imageVersion{tag: "v3"})
	if err != nil {
		return err
	}
	res, err := runOpenStack(ctx, cli, osConfig{
		Run: run, Server: o.MariaDB, V1: images["v1"], V2: images["v2"], V3: images["v3"], Rate: o.Rate, MinLoad: o.MinLoad,
		WorkDir: k.work, Events: out, Progress: out, Logger: Logger(o.Debug),
	})
	if err != nil {
		return err
	}
	res.summary(out)
	if ps := res.problems(); len(ps) > 0 {
		fmt.Fprintln(out, "\ndemo FAILED:")
		for _, p := range ps {
			fmt.Fprintln(out, "  "+p)
		}
		return exit.Error{Code: 1}
	}
	fmt.Fprintln(out, "\ndemo passed: 0 failed requests, 0 lost writes; v2 migrated expand -> roll -> migrate -> contract, v3's failed db-sync restored while v2 served")
	return nil
}
