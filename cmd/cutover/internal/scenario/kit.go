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
		if _, err := cli.ImageRemove(cctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && cmd != "" {
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
