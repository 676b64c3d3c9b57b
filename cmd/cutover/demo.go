package main

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
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/testkit"
)

const (
	demoLabel   = "dev.cutover.test=cutover-demo" // on the demo's containers, volumes and images
	demoNetwork = "cutover-demo"
	demoNodes   = 3
	demoRecord  = "written by v1 before the upgrade"
)

// demoOptions holds the flags of cutover demo.
type demoOptions struct {
	keep   bool
	listen string
	debug  bool
}

func newDemoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:     "demo [--keep]",
		Short:   "upgrade three real containers from v1 to v2 on the local Docker engine (simulated without Docker)",
		Example: "  cutover demo",
		Args:    noArgs,
	}
	cmd.Flags().BoolVar(&o.keep, "keep", false, "leave the demo containers, volumes and images in place")
	cmd.Flags().StringVar(&o.listen, "nats-listen", "127.0.0.1:0", "address of the demo's embedded NATS server (port 0: any free port)")
	cmd.Flags().BoolVar(&o.debug, "debug", false, "show the services' logs")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemo(cmd.Context(), cmd.OutOrStdout(), o)
	}
	return cmd
}

// runDemo upgrades three real containers from v1 to v2 on the local Docker
// engine and checks the result. It exits 0 only if every container runs v2
// and its data volume kept what v1 wrote.
func runDemo(ctx context.Context, out io.Writer, o demoOptions) error {
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		return runDemoSim(ctx, out, err, o.listen, o.debug)
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
	if !o.keep {
		defer cleanup()
	}

	fmt.Fprintln(out, "cutover demo: upgrade 3 containers of the 'web' service from v1 to v2 on the local Docker engine")
	work, err := os.MkdirTemp("", "cutover-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
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
		img, err := reg.Push(ctx, bin, testkit.ImageSpec{Repo: "cutover-demo/web", Tag: v, Version: v, Healthcheck: true, Labels: map[string]string{"dev.cutover.test": "cutover-demo"}})
		if err != nil {
			return err
		}
		images[v] = img
		fmt.Fprintf(out, "  built image %s (%s)\n", img.Ref, short(img.ID))
	}
	if err := testkit.PullImage(ctx, cli, images["v1"].Ref); err != nil {
		return err
	}
	if err := testkit.EnsureNetwork(ctx, cli, demoNetwork, ""); err != nil {
		return err
	}
	type demoContainer struct{ name, node, volume string }
	var containers []demoContainer
	for i := 1; i <= demoNodes; i++ {
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
		DataDir: filepath.Join(work, "data"), NATSListen: o.listen, Docker: cli, Nodes: nodes,
		AgentVersion: version, Logger: demoLogger(o.debug),
	}
	if err := (devNATS{}).secure(&cfg); err != nil {
		return err
	}
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "  cutover running in this process: NATS %s, planner, migrator, auditor, %d node-updaters\n", s.ClientURL(), len(nodes))
	if err := waitNodes(ctx, s, nodes); err != nil {
		return err
	}

	req := events.UpgradeRequested{RequestedBy: "cutover demo", Release: events.Release{Name: "demo-v2", Services: map[string]events.ServiceRelease{
		"web": {Image: images["v2"].Ref, MinHealthyMs: 1000},
	}}}
	e, err := events.New(events.Source("cli", ""), req)
	if err != nil {
		return err
	}
	if err := events.NewPublisher(s.JetStream()).Publish(ctx, e); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nupgrade %s requested: web -> %s\n\n", e.ID(), images["v2"].Ref)
	interruption := map[string]int64{}
	followErr := follow(ctx, s.JetStream(), e.ID(), out, func(ev events.Event) {
		if ev.Type() == events.TypeContainerReplaced {
			if d, err := events.DataAs[events.ContainerReplaced](ev); err == nil {
				interruption[d.Container] = d.InterruptionMs
			}
		}
	})

	// Check the outcome on the engine itself, not from cutover's own events.
	fmt.Fprintln(out, "\nsummary (read back from the Docker engine and the containers):")
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  container\tnode\timage\tserves\tvolume record\tinterruption")
	ok := followErr == nil
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
		if img != "v2" || serves != "v2" || record != "intact" {
			ok = false
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%dms\n", c.name, c.node, img, serves, record, interruption[c.name])
	}
	tw.Flush()
	if n, err := waitAudited(ctx, s, e.ID()); err == nil {
		fmt.Fprintf(out, "  the auditor recorded %s of this upgrade (SQLite)\n", render.Plural(n, "event"))
	} else {
		fmt.Fprintln(out, "  auditor:", err)
		ok = false
	}
	if !ok {
		fmt.Fprintln(out, "\ndemo FAILED: not every container runs v2 with its data intact (see above)")
		return exitError{1}
	}
	fmt.Fprintln(out, "\ndemo passed: every container runs v2 and its data volume is intact")
	return nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func versionOf(imageID string, images map[string]testkit.Image) string {
	for v, img := range images {
		if img.ID == imageID {
			return v
		}
	}
	return short(imageID)
}

// waitNodes waits until every node-updater has published its inventory.
func waitNodes(ctx context.Context, s *stack.Stack, nodes []string) error {
	kv, err := s.JetStream().KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		for {
			if _, err := kv.Get(ctx, n); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("node-updater %s did not publish its inventory: %w", n, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitAudited waits until the auditor has stored the upgrade's final event
// and returns how many events it holds for the upgrade.
func waitAudited(ctx context.Context, s *stack.Stack, id string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		recs, err := s.Store().Events(ctx, id)
		if err == nil {
			for _, r := range recs {
				if r.Type == events.TypeUpgradeCompleted || r.Type == events.TypeUpgradeFailed {
					return len(recs), nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the auditor did not record the end of upgrade %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
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

func httpDo(ctx context.Context, method, url, body string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return "", fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return string(raw), err
}

func postRecord(ctx context.Context, cli *client.Client, name, record string) error {
	base, err := containerURL(ctx, cli, name)
	if err != nil {
		return err
	}
	_, err = httpDo(ctx, http.MethodPost, base+"/data", record)
	return err
}

func getRecords(ctx context.Context, cli *client.Client, name string) (string, error) {
	base, err := containerURL(ctx, cli, name)
	if err != nil {
		return "", err
	}
	return httpDo(ctx, http.MethodGet, base+"/data", "")
}

func getVersion(ctx context.Context, cli *client.Client, name string) (string, error) {
	base, err := containerURL(ctx, cli, name)
	if err != nil {
		return "", err
	}
	raw, err := httpDo(ctx, http.MethodGet, base+"/", "")
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

// demoLogger shows warnings and errors only, unless --debug asks for all.
func demoLogger(debug bool) *slog.Logger {
	level := slog.LevelWarn
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
