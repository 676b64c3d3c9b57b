// Package docker runs the migrator's command migrations in one-off
// containers on a Docker engine (migrator.CommandRunner), as Kolla runs its
// bootstrap containers: the service's new image, the migration command, its
// env and config mounts, a timeout, and nothing left behind.
//
// It runs where the migrator runs, on the engine the migrator is given
// (migrator --docker; the environment's DOCKER_HOST or the local socket):
// deploy the migrator on a controller node that has the services' config
// directories (/etc/kolla/<service>/) and reaches the database, as
// kolla-ansible runs bootstrap containers on the first host of a group.
package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/services/migrator"
)

// Runner runs command migrations on one Docker engine.
type Runner struct {
	cli *client.Client
	// PollInterval is how often a running container is inspected (default
	// 200ms).
	PollInterval time.Duration
}

var _ migrator.CommandRunner = (*Runner)(nil)

// New returns a Runner on the engine cli (the caller keeps owning it).
func New(cli *client.Client) *Runner { return &Runner{cli: cli} }

// callTimeout bounds one engine call when the caller's ctx has no deadline.
const callTimeout = 2 * time.Minute

func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// wrappers are init programs that exec the command they are given: the
// program to look for is the one they start.
var wrappers = map[string]bool{"dumb-init": true, "tini": true, "docker-init": true, "tini-static": true}

// Check pulls the image when the engine lacks it, then looks for the
// program the container would start (the entrypoint's, or past an init
// wrapper such as Kolla's dumb-init the command's) in the image, through
// the image's PATH when it is a bare name, in a created but never started
// container.
func (r *Runner) Check(ctx context.Context, spec migrator.CommandSpec) error {
	ctx, cancel := withTimeout(ctx, callTimeout)
	defer cancel()
	img, err := r.cli.ImageInspect(ctx, spec.Image)
	if cerrdefs.IsNotFound(err) {
		resp, perr := r.cli.ImagePull(ctx, spec.Image, client.ImagePullOptions{})
		if perr != nil {
			return fmt.Errorf("pull %s: %w", spec.Image, perr)
		}
		werr := resp.Wait(ctx)
		_ = resp.Close()
		if werr != nil {
			return fmt.Errorf("pull %s: %w", spec.Image, werr)
		}
		img, err = r.cli.ImageInspect(ctx, spec.Image)
	}
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", spec.Image, err)
	}
	entry, cmd := spec.Entrypoint, spec.Command
	var env []string
	workdir := "/"
	if img.Config != nil {
		if len(entry) == 0 {
			entry = img.Config.Entrypoint
		}
		if len(cmd) == 0 {
			cmd = img.Config.Cmd
		}
		env = img.Config.Env
		if img.Config.WorkingDir != "" {
			workdir = img.Config.WorkingDir
		}
	}
	programs := programsOf(entry, cmd)
	if len(programs) == 0 {
		return fmt.Errorf("%w: the image has no entrypoint and the request no command", migrator.ErrCommandNotFound)
	}
	created, err := r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: spec.Image, Entrypoint: []string{"/nonexistent-cutover-check"}, Labels: spec.Labels},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return fmt.Errorf("create a check container from %s: %w", spec.Image, err)
	}
	defer r.remove(ctx, created.ID)
	for _, prog := range programs {
		if err := r.find(ctx, created.ID, prog, workdir, env); err != nil {
			return err
		}
	}
	return nil
}

// programsOf returns the programs a container with entrypoint and cmd
// starts: the entrypoint's first word, and past an init wrapper the program
// it execs.
func programsOf(entry, cmd []string) []string {
	if len(entry) == 0 {
		if len(cmd) == 0 {
			return nil
		}
		return []string{cmd[0]}
	}
	out := []string{entry[0]}
	if wrappers[path.Base(entry[0])] {
		rest := append(append([]string(nil), entry[1:]...), cmd...)
		for i, a := range rest {
			if a == "--" {
				if i+1 < len(rest) {
					out = append(out, rest[i+1])
				}
				break
			}
			if !strings.HasPrefix(a, "-") {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// find looks for prog in the container's file system.
func (r *Runner) find(ctx context.Context, id, prog, workdir string, env []string) error {
	var candidates []string
	switch {
	case strings.HasPrefix(prog, "/"):
		candidates = []string{prog}
	case strings.Contains(prog, "/"):
		candidates = []string{path.Join(workdir, prog)}
	default:
		p := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				p = v
			}
		}
		for _, dir := range strings.Split(p, ":") {
			if dir != "" {
				candidates = append(candidates, path.Join(dir, prog))
			}
		}
	}
	for _, c := range candidates {
		st, err := r.cli.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: c})
		if err == nil && !st.Stat.Mode.IsDir() {
			return nil
		}
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("look for %s in the image: %w", c, err)
		}
	}
	return fmt.Errorf("%w: %s is not in the image (looked in %s); check the image and the release's command", migrator.ErrCommandNotFound, prog, strings.Join(candidates, ", "))
}

// Run creates and starts the container, waits for it to exit or for the
// timeout (then kills it), reads its last output lines and removes it.
func (r *Runner) Run(ctx context.Context, spec migrator.CommandSpec) (migrator.CommandOutcome, error) {
	cctx, cancel := withTimeout(ctx, callTimeout)
	defer cancel()
	cfg := &container.Config{Image: spec.Image, Cmd: spec.Command, Env: spec.Env, Labels: spec.Labels}
	if len(spec.Entrypoint) > 0 {
		cfg.Entrypoint = spec.Entrypoint
	}
	host := &container.HostConfig{Binds: spec.Mounts}
	if spec.Network != "" {
		host.NetworkMode = container.NetworkMode(spec.Network)
	}
	created, err := r.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Name: spec.Name, Config: cfg, HostConfig: host})
	if err != nil {
		return migrator.CommandOutcome{}, fmt.Errorf("create container %s from %s: %w", spec.Name, spec.Image, err)
	}
	defer r.remove(ctx, created.ID)
	if _, err := r.cli.ContainerStart(cctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return migrator.CommandOutcome{}, fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	out := migrator.CommandOutcome{}
	deadline := time.Now().Add(spec.Timeout)
	every := r.PollInterval
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ins, err := r.cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
		if err != nil {
			return out, fmt.Errorf("inspect container %s: %w", spec.Name, err)
		}
		st := ins.Container.State
		if st != nil && (st.Status == container.StateExited || st.Status == container.StateDead) {
			out.ExitCode = st.ExitCode
			break
		}
		if spec.Timeout > 0 && time.Now().After(deadline) {
			kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_, kerr := r.cli.ContainerKill(kctx, created.ID, client.ContainerKillOptions{Signal: "KILL"})
			kcancel()
			if kerr != nil && !cerrdefs.IsNotFound(kerr) && !cerrdefs.IsConflict(kerr) {
				return out, fmt.Errorf("kill container %s after its timeout: %w", spec.Name, kerr)
			}
			out.ExitCode, out.TimedOut = -1, true
			break
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-tick.C:
		}
	}
	out.Log, err = r.logs(context.WithoutCancel(ctx), created.ID, spec.LogLines)
	if err != nil {
		return out, err
	}
	return out, nil
}

// logs returns the last n lines of the container's stdout and stderr.
func (r *Runner) logs(ctx context.Context, id string, n int) ([]string, error) {
	if n <= 0 {
		n = 20
	}
	ctx, cancel := withTimeout(ctx, callTimeout)
	defer cancel()
	rc, err := r.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	var lines []string
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// remove force-removes the container, even when ctx ended.
func (r *Runner) remove(ctx context.Context, id string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := r.cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		_ = errors.Unwrap(err) // nothing better to do: the label names it for an operator
	}
}
