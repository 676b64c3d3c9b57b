package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/harness/testkit"
)

const (
	clusterName      = "cutover-demo-cluster" // label value, network and cluster name
	clusterLabel     = testkit.LabelTest + "=" + clusterName
	clusterServers   = 3
	clusterReplicas  = 3
	clusterMinHealth = 3 * time.Second // each new container's health gate: the waves take a while
	procGrace        = 15 * time.Second
)

var clusterNodes = []string{"cluster-node1", "cluster-node2", "cluster-node3"}

// DemoClusterOptions says where the binaries are.
type DemoClusterOptions struct {
	// BinDir holds nats-server, planner, migrator, auditor and
	// node-updater (make build and make nats-server put them in bin/).
	BinDir string
}

// clusterDemo is one run: its work directory, processes and Docker engine.
type clusterDemo struct {
	o     DemoClusterOptions
	out   io.Writer
	kit   *kit
	work  string
	logs  string
	creds string
	cli   *client.Client

	servers []*proc // index i is server n<i+1>
	urls    []string
	http    string // the auditor's API, host:port

	mu     sync.Mutex
	procs  []*proc         // every process, in start order
	killed map[string]bool // the processes killed on purpose
}

// DemoCluster is `cutover demo-cluster` (make demo-cluster): the
// distributed mode for real on one machine. Three nats-server processes form
// a JetStream cluster; the planner (twice, one holding the lease), the
// migrator, the auditor and one node-updater per demo node run as processes
// of their own, each on its own generated NATS identity, with the stream and
// buckets at 3 replicas. An upgrade of three containers on the local Docker
// engine runs; once its first wave completed, the demo kills (SIGKILL) the
// nats-server leading the CUTOVER stream and the planner holding the lease,
// and shows the upgrade finishing. Then it checks the result on the engine
// and in the auditor's history, and removes every process, container,
// volume, network, image and file it made.
//
// It cleans up whatever happened, and exits 1 unless the upgrade completed
// through the faults with every container on v2 and every event in the
// auditor's history once.
func DemoCluster(ctx context.Context, out io.Writer, o DemoClusterOptions) (err error) {
	for _, b := range []string{"nats-server", "planner", "migrator", "auditor", "node-updater"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run make build nats-server first, or give --bin the directory holding it: %w", b, o.BinDir, err)
		}
	}
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		return fmt.Errorf("demo-cluster needs the local Docker engine: %w", err)
	}
	defer cli.Close()
	d := &clusterDemo{o: o, out: out, cli: cli, killed: map[string]bool{}}
	if err := d.removeDocker(ctx); err != nil { // leftovers of an interrupted run
		return err
	}
	fmt.Fprintf(out, "cutover demo-cluster: a 3-server NATS JetStream cluster, every cutover service a process of its own, replicas %d\n", clusterReplicas)
	if d.kit, err = newKit(ctx, clusterName+"-", testkit.BuildDemoApp); err != nil {
		return err
	}
	d.work = d.kit.work
	d.logs = filepath.Join(d.work, "logs")
	d.creds = filepath.Join(d.work, "nats")
	defer func() {
		if cerr := d.cleanup(context.WithoutCancel(ctx), err != nil); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if err := os.Mkdir(d.logs, 0o700); err != nil {
		return fmt.Errorf("create the log directory: %w", err)
	}
	return d.run(ctx)
}

func (d *clusterDemo) run(ctx context.Context) error {
	images, containers, err := d.fleet(ctx)
	if err != nil {
		return err
	}
	if err := d.startCluster(ctx); err != nil {
		return err
	}
	nc, js, err := d.connectCLI(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := d.startServices(ctx, js); err != nil {
		return err
	}

	req := events.UpgradeRequested{RequestedBy: "cutover demo-cluster", Release: events.Release{Name: "cluster-v2", Services: map[string]events.ServiceRelease{
		"web": {Image: images["v2"].Ref, MinHealthyMs: clusterMinHealth.Milliseconds()},
	}}}
	e, err := events.New(events.Source("cli", ""), req)
	if err != nil {
		return err
	}
	if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nupgrade %s requested: web -> %s, one node at a time\n\n", e.ID(), images["v2"].Ref)
	faults := make(chan error, 1)
	var once sync.Once
	followErr := upgrades.Follow(ctx, js, e.ID(), d.out, func(ev events.Event) {
		if ev.Type() == events.TypeWaveCompleted {
			once.Do(func() { go func() { faults <- d.injectFaults(ctx, js) }() })
		}
	})
	var faultErr error
	select {
	case faultErr = <-faults:
	default:
		faultErr = errors.New("the upgrade ended before its first wave completed: no fault was injected")
	}
	fmt.Fprintln(d.out)
	ok := followErr == nil && faultErr == nil
	if followErr != nil {
		fmt.Fprintf(d.out, "the upgrade did not complete: %v\n", followErr)
	}
	if faultErr != nil {
		fmt.Fprintf(d.out, "faults: %v\n", faultErr)
	}
	if !d.checkEngine(ctx, containers, images) {
		ok = false
	}
	if !d.checkHistory(ctx, js, e.ID(), len(containers)) {
		ok = false
	}
	d.report()
	if !ok {
		fmt.Fprintln(d.out, "\ndemo-cluster FAILED (see above)")
		return exit.Error{Code: 1}
	}
	fmt.Fprintln(d.out, "\ndemo-cluster passed: the upgrade finished on the cluster without one of its servers and its leading planner")
	return nil
}

// fleet pushes the demo app's v1 and v2 images to the kit's registry and
// starts one v1 container per node.
func (d *clusterDemo) fleet(ctx context.Context) (map[string]testkit.Image, []string, error) {
	images, err := d.kit.push(ctx, d.out, clusterName+"/web", map[string]string{testkit.LabelTest: clusterName}, v1v2...)
	if err != nil {
		return nil, nil, err
	}
	if err := testkit.PullImage(ctx, d.cli, images["v1"].Ref); err != nil {
		return nil, nil, err
	}
	if err := testkit.EnsureNetwork(ctx, d.cli, clusterName, ""); err != nil {
		return nil, nil, err
	}
	var names []string
	for i, node := range clusterNodes {
		name := fmt.Sprintf("%s-web-%d", clusterName, i+1)
		id, err := testkit.CreateContainer(ctx, d.cli, testkit.ContainerOpts{
			Name: name, Image: images["v1"].Ref, Node: node, Service: "web",
			Labels:  map[string]string{testkit.LabelTest: clusterName},
			Volumes: map[string]string{fmt.Sprintf("%s-data-%d", clusterName, i+1): "/data"}, Network: clusterName,
			RestartPolicy: "unless-stopped",
		})
		if err != nil {
			return nil, nil, err
		}
		if _, err := testkit.WaitHealth(ctx, d.cli, id, "healthy"); err != nil {
			return nil, nil, fmt.Errorf("container %s did not become healthy: %w", name, err)
		}
		names = append(names, name)
	}
	fmt.Fprintf(d.out, "  started %s on v1, one per node (%s)\n", strings.Join(names, ", "), strings.Join(clusterNodes, ", "))
	return images, names, nil
}

// startCluster writes the credentials of every identity and the three
// servers' configurations, and starts the servers.
func (d *clusterDemo) startCluster(ctx context.Context) error {
	if _, err := natsauth.Write(d.creds, natsauth.Fleet{Nodes: clusterNodes}); err != nil {
		return fmt.Errorf("generate NATS credentials: %w", err)
	}
	client, route := make([]int, clusterServers), make([]int, clusterServers)
	var routes []string
	for i := range clusterServers {
		var err error
		if client[i], err = freePort(); err != nil {
			return err
		}
		if route[i], err = freePort(); err != nil {
			return err
		}
		routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", route[i])))
		d.urls = append(d.urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for i := range clusterServers {
		name := fmt.Sprintf("n%d", i+1)
		conf := fmt.Sprintf(`# cutover demo-cluster: server %s of %d
server_name: %q
listen: "127.0.0.1:%d"
max_payload: %d
jetstream { store_dir: %q }
cluster {
  name: %q
  listen: "127.0.0.1:%d"
  routes: [%s]
}
include %q
`, name, clusterServers, name, client[i], embednats.MaxPayload, filepath.Join(d.work, "js-"+name), clusterName, route[i], strings.Join(routes, ", "), natsauth.AuthorizationFile)
		path := filepath.Join(d.creds, name+".conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		p, err := startProc(d.logs, "nats-"+name, filepath.Join(d.o.BinDir, "nats-server"), []string{"-c", path}, nil)
		if err != nil {
			return err
		}
		d.track(p)
		d.servers = append(d.servers, p)
	}
	for i, p := range d.servers {
		if err := waitListening(ctx, p, client[i]); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "  started 3 nats-server processes (%s), JetStream clustered, one nkey identity per service and node\n", strings.Join(d.urls, ", "))
	return nil
}

// waitListening waits until p accepts connections on port.
func waitListening(ctx context.Context, p *proc, port int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			return c.Close()
		}
		if !p.running() || time.Now().After(deadline) {
			return fmt.Errorf("%s did not listen on port %d: %v; its log ends:\n%s", p.name, port, err, strings.Join(p.tail(10), "\n"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connectCLI connects as the cli identity and creates the stream and
// buckets with 3 replicas, retrying while the cluster elects its JetStream
// meta leader.
func (d *clusterDemo) connectCLI(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	cfg := d.client("cli")
	deadline := time.Now().Add(60 * time.Second)
	for {
		nc, js, err := events.Connect(ctx, cfg, "cutover-cli", events.WithSetup(events.SetupConfig{Replicas: clusterReplicas}))
		if err == nil {
			fmt.Fprintf(d.out, "  created the CUTOVER stream and the 4 KV buckets with %d replicas\n", clusterReplicas)
			return nc, js, nil
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("set up the stream on the cluster: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// client is the connection config of an identity: every server's URL and
// its generated seed.
func (d *clusterDemo) client(identity string) events.ClientConfig {
	return events.ClientConfig{URL: strings.Join(d.urls, ","), NKeyFile: natsauth.SeedFile(d.creds, identity)}
}

// startServices starts every service as a process of its own and waits
// until the node-updaters published their inventories and a planner holds
// the lease.
func (d *clusterDemo) startServices(ctx context.Context, js jetstream.JetStream) error {
	dbs := filepath.Join(d.work, "databases.yaml")
	if err := os.WriteFile(dbs, []byte(fmt.Sprintf("web: {driver: sqlite, location: %q}\n", filepath.Join(d.work, "web.db"))), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", dbs, err)
	}
	type svc struct {
		name, bin, identity string
		args                []string
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	d.http = fmt.Sprintf("127.0.0.1:%d", port)
	all := []svc{
		{"auditor", "auditor", "auditor", []string{"--store", filepath.Join(d.work, "audit.db"), "--http", d.http}},
		{"migrator", "migrator", "migrator", []string{"--databases", dbs}},
		{"planner-a", "planner", "planner", []string{"--instance", "planner-a"}},
		{"planner-b", "planner", "planner", []string{"--instance", "planner-b"}},
	}
	for _, n := range clusterNodes {
		all = append(all, svc{"node-updater-" + n, "node-updater", "node-updater-" + n, []string{"--node", n}})
	}
	var names []string
	for _, s := range all {
		c := d.client(s.identity)
		env := []string{"CUTOVER_NATS=" + c.URL, "CUTOVER_NATS_NKEY=" + c.NKeyFile, fmt.Sprintf("CUTOVER_STREAM_REPLICAS=%d", clusterReplicas)}
		p, err := startProc(d.logs, s.name, filepath.Join(d.o.BinDir, s.bin), s.args, env)
		if err != nil {
			return err
		}
		d.track(p)
		names = append(names, s.name)
		if s.name == "planner-a" { // so that planner-a takes the lease
			if err := d.waitLog(ctx, p, 30*time.Second, "took the planner lease"); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(d.out, "  started %d service processes: %s\n", len(names), strings.Join(names, ", "))
	kv, err := js.KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w", events.BucketNodes, err)
	}
	for _, n := range clusterNodes {
		if err := wait(ctx, 60*time.Second, "node-updater "+n+"'s inventory", func() bool { _, err := kv.Get(ctx, n); return err == nil }); err != nil {
			return errors.Join(err, d.exited())
		}
	}
	return d.exited()
}

// waitLog waits until p's log has a line with words.
func (d *clusterDemo) waitLog(ctx context.Context, p *proc, within time.Duration, words ...string) error {
	err := wait(ctx, within, p.name+" to log "+strings.Join(words, " "), func() bool { return len(p.grep(words...)) > 0 || !p.running() })
	if err == nil && !p.running() {
		err = fmt.Errorf("%s exited: %v", p.name, p.err)
	}
	if err != nil {
		return fmt.Errorf("%w; its log ends:\n%s", err, strings.Join(p.tail(10), "\n"))
	}
	return nil
}

// exited reports the processes that stopped on their own.
func (d *clusterDemo) exited() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, p := range d.procs {
		if !p.running() && !d.killed[p.name] {
			errs = append(errs, fmt.Errorf("%s exited (%v); its log ends:\n%s", p.name, p.err, strings.Join(p.tail(10), "\n")))
		}
	}
	return errors.Join(errs...)
}

func (d *clusterDemo) track(p *proc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.procs = append(d.procs, p)
}

// wait polls cond every 100ms until it holds, for at most within.
func wait(ctx context.Context, within time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", within, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// injectFaults kills the nats-server that leads the CUTOVER stream and the
// planner that holds the lease, at once, as a power cut would.
func (d *clusterDemo) injectFaults(ctx context.Context, js jetstream.JetStream) error {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	info := st.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return fmt.Errorf("stream %s has no leader to kill", events.StreamName)
	}
	leader := info.Cluster.Leader
	var server *proc
	for i, p := range d.servers {
		if fmt.Sprintf("n%d", i+1) == leader {
			server = p
		}
	}
	planner := d.leadingPlanner()
	if server == nil || planner == nil {
		return fmt.Errorf("found no process for stream leader %q or the lease holder", leader)
	}
	d.mu.Lock()
	d.killed[server.name], d.killed[planner.name] = true, true
	d.mu.Unlock()
	server.kill()
	planner.kill()
	fmt.Fprintf(d.out, "  >>> wave 0 done: killed (SIGKILL) nats-server %s, the CUTOVER stream's leader, and %s, the planner holding the lease <<<\n", leader, planner.name)
	return nil
}

// leadingPlanner is the planner whose log says it holds the lease now.
func (d *clusterDemo) leadingPlanner() *proc {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.procs {
		if strings.HasPrefix(p.name, "planner-") && p.running() && len(p.grep("took")) > len(p.grep("lost the planner lease")) {
			return p
		}
	}
	return nil
}
