package scenario

import (
	"context"
	"io"
	"time"

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
	d, err := startHAProxyDemo(ctx, out, "demo-openstack", "cutover-os", o.Rate, o.MinLoad,
		"cutover demo-openstack: 3 replicas of an identity service (keystone-like) on MariaDB behind HAProxy;\n"+
			"its schema is migrated by its own db-sync in one-off bootstrap containers of the new image, as Kolla runs keystone-manage db_sync\n",
		testkit.BuildIdentityApp, "keystone", imageVersion{tag: "v1"}, imageVersion{tag: "v2"}, imageVersion{tag: "v3"})
	if err != nil {
		return err
	}
	defer d.close()
	res, err := runOpenStack(ctx, d.cli, osConfig{
		Run: d.run, Server: o.MariaDB, V1: d.images["v1"], V2: d.images["v2"], V3: d.images["v3"], Rate: o.Rate, MinLoad: o.MinLoad,
		WorkDir: d.kit.work, Events: out, Progress: out, Logger: Logger(o.Debug),
	})
	if err != nil {
		return err
	}
	res.summary(out)
	return verdict(out, res.problems(), "demo passed: 0 failed requests, 0 lost writes; v2 migrated expand -> roll -> migrate -> contract, v3's failed db-sync restored while v2 served")
}
