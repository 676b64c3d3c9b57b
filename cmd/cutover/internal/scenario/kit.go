package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// kit is the set-up every Docker scenario, and every test of one, starts
// from: a work directory, its app (the demo app, the identity app) built
// once, and an in-process registry serving its images.
type kit struct {
	work string
	bin  string
	reg  *testkit.Registry
}

// newKit makes a work directory named after prefix, builds the app into it
// with build (testkit.BuildDemoApp, testkit.BuildIdentityApp) and starts
// the registry. close removes them.
func newKit(ctx context.Context, prefix string, build func(context.Context, string) (string, error)) (*kit, error) {
	work, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("create a work directory: %w", err)
	}
	k := &kit{work: work}
	if k.bin, err = build(ctx, filepath.Join(work, "bin")); err != nil {
		k.close(ctx)
		return nil, err
	}
	if k.reg, err = testkit.StartRegistry(ctx); err != nil {
		k.close(ctx)
		return nil, err
	}
	return k, nil
}

func (k *kit) close(ctx context.Context) {
	if k.reg != nil {
		_ = k.reg.Close(context.WithoutCancel(ctx))
	}
	_ = os.RemoveAll(k.work)
}

// imageVersion is one image of the demo app a scenario rolls between.
type imageVersion struct {
	tag  string   // the tag and the version the app reports
	env  []string // added to the image's environment
	note string   // said after the image id
}

// v1v2 are the two plain versions most scenarios roll between.
var v1v2 = []imageVersion{{tag: "v1"}, {tag: "v2"}}

// push pushes the app as repo:tag for each version, with its Docker
// HEALTHCHECK and labels, and says so on out.
func (k *kit) push(ctx context.Context, out io.Writer, repo string, labels map[string]string, versions ...imageVersion) (map[string]testkit.Image, error) {
	images := map[string]testkit.Image{}
	for _, v := range versions {
		img, err := k.reg.Push(ctx, k.bin, testkit.ImageSpec{Repo: repo, Tag: v.tag, Version: v.tag, Healthcheck: true, Env: v.env, Labels: labels})
		if err != nil {
			return images, err
		}
		images[v.tag] = img
		fmt.Fprintf(out, "  built image %s (%s%s)\n", img.Ref, short(img.ID), v.note)
	}
	return images, nil
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// haproxyDemoEngine checks what the HAProxy demos need: a Docker engine and
// haproxy on PATH. It says what is missing and how to get it, as exit code 3.
func haproxyDemoEngine(ctx context.Context, cmd string) (*client.Client, error) {
	cli, err := testkit.DockerAvailable(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cutover %s: no Docker engine is reachable (%v).\n"+
			"Start Docker (e.g. 'sudo systemctl start docker'), or point DOCKER_HOST at an engine, then run 'make %s' again.\n", cmd, err, cmd)
		return nil, exit.Error{Code: 3}
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		cli.Close()
		fmt.Fprintf(os.Stderr, "cutover %s: %v.\nInstall it with 'sudo scripts/install-haproxy.sh', then run 'make %s' again.\n", cmd, err, cmd)
		return nil, exit.Error{Code: 3}
	}
	return cli, nil
}

// removeImages removes what a run labelled with label left on the engine,
// and its images.
func removeImages(ctx context.Context, cli *client.Client, cmd, label string, images map[string]testkit.Image) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_ = testkit.Cleanup(cctx, cli, label)
	for _, img := range images {
		// Cleanup removed those that carry the label already.
		if _, err := cli.ImageRemove(cctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !cerrdefs.IsNotFound(err) && cmd != "" {
			fmt.Fprintf(os.Stderr, "cutover %s: remove image %s: %v\n", cmd, short(img.ID), err)
		}
	}
}

// indent prefixes each write (one event line) with two spaces.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := i.w.Write(append([]byte("  "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// haproxyDemo is what every HAProxy demo starts from: the engine (with
// haproxy on PATH), the run's name, its kit and images.
type haproxyDemo struct {
	cli    *client.Client
	run    string
	kit    *kit
	images map[string]testkit.Image
	close  func()
}

// startHAProxyDemo checks the demo's flags and what it needs (exit codes 2
// and 3), names the run prefix<number>, says what it does (header), builds
// the app with build and pushes versions as <run>/<repo>. close removes
// the run's containers and images, and the kit.
func startHAProxyDemo(ctx context.Context, out io.Writer, cmd, prefix string, rate int, minLoad time.Duration, header string,
	build func(context.Context, string) (string, error), repo string, versions ...imageVersion) (*haproxyDemo, error) {
	if rate <= 0 || minLoad <= 0 {
		return nil, exit.Usagef("--rate and --duration must be positive")
	}
	cli, err := haproxyDemoEngine(ctx, cmd)
	if err != nil {
		return nil, err
	}
	d := &haproxyDemo{cli: cli, run: fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000)}
	fmt.Fprint(out, header)
	d.kit, err = newKit(ctx, prefix+"-", build)
	if err != nil {
		cli.Close()
		return nil, err
	}
	d.images, err = d.kit.push(ctx, out, d.run+"/"+repo, map[string]string{testkit.LabelTest: d.run}, versions...)
	d.close = func() {
		removeImages(ctx, cli, cmd, testkit.LabelTest+"="+d.run, d.images)
		d.kit.close(ctx)
		cli.Close()
	}
	if err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// verdict prints a demo's problems after "demo FAILED:" as exit code 1, or
// passed when there are none.
func verdict(out io.Writer, problems []string, passed string) error {
	if len(problems) > 0 {
		fmt.Fprintln(out, "\ndemo FAILED:")
		for _, p := range problems {
			fmt.Fprintln(out, "  "+p)
		}
		return exit.Error{Code: 1}
	}
	fmt.Fprintln(out, "\n"+passed)
	return nil
}
