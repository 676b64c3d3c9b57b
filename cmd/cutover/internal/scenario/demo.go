package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/testkit"
)

const (
	demoLabel   = "dev.cutover.test=cutover-demo" // on the demo's containers, volumes and images
	demoNetwork = "cutover-demo"
	// DemoNodes is how many nodes (one web container each) the demo upgrades.
	DemoNodes  = 3
	demoRecord = "written by v1 before the upgrade"
)

// DemoOptions are the flags of cutover demo.
type DemoOptions struct {
	// Keep leaves the demo's containers, volumes and images in place.
	Keep bool
	// Listen is the embedded NATS server's address.
	Listen string
	// Debug shows the services' logs.
	Debug bool
	// Version is the version the node-updaters report (the binary's).
	Version string
}

// Demo upgrades three real containers from v1 to v2 on the local Docker
// engine and checks the result. It exits 0 only if every container runs v2
// and its data volume kept what v1 wrote.
func Demo(ctx context.Context, out io.Writer, o DemoOptions) error {
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		return demoSim(ctx, out, err, o)
	}
	defer cli.Close()
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if err := demoCleanup(cctx, cli); err != nil {
			fmt.Fprintln(os.Stderr, "cutover demo: cleanup:", err)
		}
	}
	cleanup() // leftovers of an interrupted run
	if !o.Keep {
		defer cleanup()
	}

	fmt.Fprintln(out, "cutover demo: upgrade 3 containers of the 'web' service from v1 to v2 on the local Docker engine")
	k, err := newKit(ctx, "cutover-demo-", testkit.BuildDemoApp)
	if err != nil {
		return err
	}
	defer k.close(ctx)
	images, err := k.push(ctx, out, "cutover-demo/web", map[string]string{testkit.LabelTest: "cutover-demo"}, v1v2...)
	if err != nil {
		return err
	}
	if err := testkit.PullImage(ctx, cli, images["v1"].Ref); err != nil {
		return err
	}
	if err := testkit.EnsureNetwork(ctx, cli, demoNetwork, ""); err != nil {
		return err
	}
	type demoContainer struct{ name, node, volume string }
	var containers []demoContainer
	for i := 1; i <= DemoNodes; i++ {
		c := demoContainer{name: fmt.Sprintf("cutover-demo-web-%d", i), node: fmt.Sprintf("demo-node%d", i), volume: fmt.Sprintf("cutover-demo-data-%d", i)}
		id, err := testkit.CreateContainer(ctx, cli, testkit.ContainerOpts{
			Name: c.name, Image: images["v1"].Ref, Node: c.node, Service: "web",
			Labels:  map[string]string{"dev.cutover.test": "cutover-demo"},
			Env:     []string{"DEMO_GREETING=hello from " + c.node},
			Volumes: map[string]string{c.volume: "/data"}, Network: demoNetwork, Aliases: []string{"web"},
			RestartPolicy: "unless-stopped",
		})
		if err != nil {
			return err
		}
		if _, err := testkit.WaitHealth(ctx, cli, id, "healthy"); err != nil {
			return fmt.Errorf("demo container %s did not become healthy: %w", c.name, err)
		}
		if err := postRecord(ctx, cli, c.name, demoRecord); err != nil {
			return err
		}
		fmt.Fprintf(out, "  started %s on %s with v1; wrote a record to volume %s\n", c.name, c.node, c.volume)
		containers = append(containers, c)
	}

	nodes := make([]string, len(containers))
	for i, c := range containers {
		nodes[i] = c.node
	}
	cfg := stack.Config{
		DataDir: filepath.Join(k.work, "data"), NATSListen: o.Listen, Docker: cli, Nodes: nodes,
		AgentVersion: o.Version, Logger: Logger(o.Debug),
	}
	s, err := startSecured(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "  cutover running in this process: NATS %s, planner, migrator, auditor, %d node-updaters\n", s.ClientURL(), len(nodes))
	if err := s.WaitNodes(ctx, nodes); err != nil {
		return err
	}

	id, interruption, followErr, err := demoUpgrade(ctx, s, out, images["v2"].Ref)
	if err != nil {
		return err
	}

	// Check the outcome on the engine itself, not from cutover's own events.
	var rows []summaryRow
	for _, c := range containers {
		img, serves, record := "?", "?", "missing"
		if insp, err := cli.ContainerInspect(ctx, c.name, client.ContainerInspectOptions{}); err == nil {
			img = versionOf(insp.Container.Image, images)
		}
		if v, err := getVersion(ctx, cli, c.name); err == nil {
			serves = v
		}
		if data, err := getRecords(ctx, cli, c.name); err == nil && strings.Contains(data, demoRecord) {
			record = "intact"
		}
		rows = append(rows, summaryRow{fmt.Sprintf("  %s\t%s\t%s\t%s\t%s\t%dms", c.name, c.node, img, serves, record, interruption[c.name]),
			img == "v2" && serves == "v2" && record == "intact"})
	}
	ok := summary(ctx, s, out, id, followErr, "read back from the Docker engine and the containers",
		"  container\tnode\timage\tserves\tvolume record\tinterruption", rows)
	if !ok {
		fmt.Fprintln(out, "\ndemo FAILED: not every container runs v2 with its data intact (see above)")
		return exit.Error{Code: 1}
	}
	fmt.Fprintln(out, "\ndemo passed: every container runs v2 and its data volume is intact")
	return nil
}

func versionOf(imageID string, images map[string]testkit.Image) string {
	for v, img := range images {
		if img.ID == imageID {
			return v
		}
	}
	return short(imageID)
}

// containerURL returns the base URL of a demo container on the demo network.
func containerURL(ctx context.Context, cli *client.Client, name string) (string, error) {
	insp, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", name, err)
	}
	ep, ok := insp.Container.NetworkSettings.Networks[demoNetwork]
	if !ok || !ep.IPAddress.IsValid() {
		return "", fmt.Errorf("container %s has no address on network %s", name, demoNetwork)
	}
	return "http://" + ep.IPAddress.String() + ":8080", nil
}

func postRecord(ctx context.Context, cli *client.Client, name, record string) error {
	base, err := containerURL(ctx, cli, name)
	if err != nil {
		return err
	}
	_, err = testkit.HTTP(ctx, http.MethodPost, base+"/data", record)
	return err
}

func getRecords(ctx context.Context, cli *client.Client, name string) (string, error) {
	base, err := containerURL(ctx, cli, name)
	if err != nil {
		return "", err
	}
	return testkit.HTTP(ctx, http.MethodGet, base+"/data", "")
}

func getVersion(ctx context.Context, cli *client.Client, name string) (string, error) {
	base, err := containerURL(ctx, cli, name)
	if err != nil {
		return "", err
	}
	raw, err := testkit.HTTP(ctx, http.MethodGet, base+"/", "")
	if err != nil {
		return "", err
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return "", fmt.Errorf("read version of %s: %w", name, err)
	}
	return v.Version, nil
}

// demoCleanup removes what the demo created: its containers (including any
// renamed old ones), volumes, network and images.
func demoCleanup(ctx context.Context, cli *client.Client) error {
	var errs []error
	errs = append(errs, testkit.Cleanup(ctx, cli, demoLabel))
	if _, err := cli.NetworkRemove(ctx, demoNetwork, client.NetworkRemoveOptions{}); err != nil && !strings.Contains(err.Error(), "not found") {
		errs = append(errs, fmt.Errorf("remove network %s: %w", demoNetwork, err))
	}
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", demoLabel)})
	if err != nil {
		errs = append(errs, err)
	}
	for _, img := range imgs.Items {
		if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			errs = append(errs, fmt.Errorf("remove image %s: %w", short(img.ID), err))
		}
	}
	return errors.Join(errs...)
}

// Logger shows warnings and errors only, unless debug (--debug) asks for all.
func Logger(debug bool) *slog.Logger {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// demoUpgrade asks for the demo's web service to move to image and follows
// the upgrade until it ends, noting each container's interruption.
// followErr is how the upgrade ended; err is a failure to ask.
func demoUpgrade(ctx context.Context, s *stack.Stack, out io.Writer, image string) (id string, interruption map[string]int64, followErr, err error) {
	req := events.UpgradeRequested{RequestedBy: "cutover demo", Release: events.Release{Name: "demo-v2", Services: map[string]events.ServiceRelease{
		"web": {Image: image, MinHealthyMs: 1000},
	}}}
	e, err := events.New(events.Source("cli", ""), req)
	if err != nil {
		return "", nil, nil, err
	}
	if err := events.NewPublisher(s.JetStream()).Publish(ctx, e); err != nil {
		return "", nil, nil, err
	}
	fmt.Fprintf(out, "\nupgrade %s requested: web -> %s\n\n", e.ID(), image)
	interruption = map[string]int64{}
	followErr = upgrades.Follow(ctx, s.JetStream(), e.ID(), out, func(ev events.Event) {
		if ev.Type() == events.TypeContainerReplaced {
			if d, err := events.DataAs[events.ContainerReplaced](ev); err == nil {
				interruption[d.Container] = d.InterruptionMs
			}
		}
	})
	return e.ID(), interruption, followErr, nil
}

// audited says how many events the auditor recorded of upgrade id, and
// whether it recorded the upgrade's end.
func audited(ctx context.Context, s *stack.Stack, out io.Writer, id string) bool {
	n, err := s.WaitAudited(ctx, id)
	if err != nil {
		fmt.Fprintln(out, "  auditor:", err)
		return false
	}
	fmt.Fprintf(out, "  the auditor recorded %s of this upgrade (SQLite)\n", render.Plural(n, "event"))
	return true
}

// summaryRow is one container in a demo's summary: its cells, and whether
// it ended as it should.
type summaryRow struct {
	cells string
	ok    bool
}

// summary prints a demo's outcome: a table (header, then each row) read
// back from where the containers run (what), and what the auditor
// recorded. It is true only if the upgrade completed (followErr nil),
// every row is ok and the auditor recorded the upgrade's end.
func summary(ctx context.Context, s *stack.Stack, out io.Writer, id string, followErr error, what, header string, rows []summaryRow) bool {
	fmt.Fprintf(out, "\nsummary (%s):\n", what)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	ok := followErr == nil
	for _, r := range rows {
		fmt.Fprintln(tw, r.cells)
		ok = ok && r.ok
	}
	tw.Flush()
	return audited(ctx, s, out, id) && ok
}

// startSecured starts the in-process stack with every service on its own
// generated NATS identity, as cutover dev runs it.
func startSecured(ctx context.Context, cfg stack.Config) (*stack.Stack, error) {
	if err := (stack.DevNATS{}).Secure(&cfg); err != nil {
		return nil, err
	}
	return stack.Start(ctx, cfg)
}
