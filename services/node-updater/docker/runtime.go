package docker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/events"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
)

// callTimeout bounds an engine call when the caller's ctx has no deadline.
// Pulls get longer: a large image over a slow link takes minutes.
const (
	callTimeout = time.Minute
	pullTimeout = 10 * time.Minute
)

// Runtime implements nodeupdater.Runtime with the Docker Engine API.
type Runtime struct {
	cli *client.Client
}

var _ nodeupdater.Runtime = (*Runtime)(nil)

// New returns a Runtime on cli. The caller owns cli and closes it.
func New(cli *client.Client) *Runtime { return &Runtime{cli: cli} }

// Name implements nodeupdater.Runtime.
func (r *Runtime) Name() string { return "docker" }

// List implements nodeupdater.Runtime. It inspects each container, so the
// result carries health and image IDs whatever the API version.
func (r *Runtime) List(ctx context.Context, node string) ([]nodeupdater.Container, error) {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", events.LabelNode+"="+node),
	})
	if err != nil {
		return nil, engineErr(fmt.Errorf("list containers of node %s: %w", node, err))
	}
	out := make([]nodeupdater.Container, 0, len(res.Items))
	for _, item := range res.Items {
		c, err := r.Inspect(ctx, item.ID)
		if errors.Is(err, nodeupdater.ErrNotFound) {
			continue // removed since the list
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Inspect implements nodeupdater.Runtime.
func (r *Runtime) Inspect(ctx context.Context, nameOrID string) (nodeupdater.Container, error) {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	res, err := r.cli.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	if err != nil {
		return nodeupdater.Container{}, engineErr(fmt.Errorf("inspect container %s: %w", nameOrID, err))
	}
	return fromInspect(res.Container), nil
}

// fromInspect converts an inspection into the updater's terms.
func fromInspect(c container.InspectResponse) nodeupdater.Container {
	out := nodeupdater.Container{
		ID:           c.ID,
		Name:         strings.TrimPrefix(c.Name, "/"),
		ImageID:      c.Image,
		RestartCount: c.RestartCount,
	}
	if c.Config != nil {
		out.Image = c.Config.Image
		out.Labels = c.Config.Labels
		out.Env = c.Config.Env
		if hc := c.Config.Healthcheck; hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE" {
			out.Healthcheck = true
		}
		if c.Config.StopTimeout != nil && *c.Config.StopTimeout > 0 {
			out.StopTimeout = time.Duration(*c.Config.StopTimeout) * time.Second
		}
	}
	if c.HostConfig != nil {
		out.AutoRemove = c.HostConfig.AutoRemove
	}
	out.IPAddress = firstAddress(c)
	if s := c.State; s != nil {
		out.State = string(s.Status)
		out.Running = s.Running
		out.Restarting = s.Restarting
		out.ExitCode = s.ExitCode
		if t, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil && t.Year() > 1 {
			out.StartedAt = t
		}
		if t, err := time.Parse(time.RFC3339Nano, s.FinishedAt); err == nil && t.Year() > 1 {
			out.StoppedAt = t
		}
		if h := s.Health; h != nil && h.Status != container.NoHealthcheck {
			out.Healthcheck = true
			out.Health = string(h.Status)
			if n := len(h.Log); n > 0 && h.Log[n-1] != nil {
				out.HealthOutput = strings.TrimSpace(h.Log[n-1].Output)
			}
		}
	}
	return out
}

// firstAddress returns the container's IPv4 address on the network its
// network mode names, else on the first network by name.
func firstAddress(c container.InspectResponse) string {
	if c.NetworkSettings == nil || len(c.NetworkSettings.Networks) == 0 {
		return ""
	}
	nets := c.NetworkSettings.Networks
	if c.HostConfig != nil {
		mode := string(c.HostConfig.NetworkMode)
		if mode == "default" {
			mode = "bridge"
		}
		if ep := nets[mode]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	for _, n := range slices.Sorted(maps.Keys(nets)) {
		if ep := nets[n]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	return ""
}

// execOutputLimit caps the output an exec probe keeps for error reports.
const execOutputLimit = 4096

// Exec implements nodeupdater.Runtime: it creates an exec instance, reads
// its output to the end and reads its exit code.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	created, err := r.cli.ExecCreate(ctx, id, client.ExecCreateOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return 0, "", engineErr(fmt.Errorf("create exec %q in %s: %w", strings.Join(cmd, " "), shortID(id), err))
	}
	att, err := r.cli.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return 0, "", engineErr(fmt.Errorf("start exec %q in %s: %w", strings.Join(cmd, " "), shortID(id), err))
	}
	var buf bytes.Buffer
	// The hijacked connection does not watch ctx: close it when ctx ends.
	stop := context.AfterFunc(ctx, att.Close)
	_, err = stdcopy.StdCopy(&buf, &buf, att.Reader)
	stop()
	att.Close()
	if err != nil {
		if ctx.Err() != nil {
			return 0, "", ctx.Err()
		}
		return 0, "", fmt.Errorf("read output of exec %q in %s: %w", strings.Join(cmd, " "), shortID(id), err)
	}
	out := buf.String()
	if len(out) > execOutputLimit {
		out = out[len(out)-execOutputLimit:]
	}
	// The stream ends when the process exits; the engine records the exit
	// code a moment later.
	for {
		ins, err := r.cli.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return 0, out, engineErr(fmt.Errorf("inspect exec in %s: %w", shortID(id), err))
		}
		if !ins.Running {
			return ins.ExitCode, out, nil
		}
		select {
		case <-ctx.Done():
			return 0, out, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Pull implements nodeupdater.Runtime: it pulls ref, waits for the pull to
// finish and returns the image ID the engine now has under ref.
func (r *Runtime) Pull(ctx context.Context, ref string) (string, error) {
	return r.PullWithProgress(ctx, ref, nil)
}

// PullWithProgress pulls ref, calling progress (when not nil) after every
// message of the engine's progress stream that changes a layer's state.
func (r *Runtime) PullWithProgress(ctx context.Context, ref string, progress func(nodeupdater.PullProgress)) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx, pullTimeout)
	defer cancel()
	resp, err := r.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return "", engineErr(err)
	}
	defer resp.Close()
	var layers layerProgress
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", engineErr(err)
		}
		if msg.Error != nil {
			err := fmt.Errorf("pull %s: %s", ref, msg.Error.Message)
			if msg.Error.Code == 404 {
				err = fmt.Errorf("%w: %w", cerrdefs.ErrNotFound, err)
			}
			return "", engineErr(err)
		}
		if layers.update(msg.ID, msg.Status, msg.Progress) && progress != nil {
			progress(layers.snapshot())
		}
	}
	img, err := r.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", engineErr(fmt.Errorf("inspect pulled image: %w", err))
	}
	return img.ID, nil
}

// Stop implements nodeupdater.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int(math.Ceil(timeout.Seconds()))
	ctx, cancel := withDefaultTimeout(ctx, timeout+callTimeout)
	defer cancel()
	if _, err := r.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return engineErr(err)
	}
	return nil
}

// Rename implements nodeupdater.Runtime.
func (r *Runtime) Rename(ctx context.Context, id, newName string) error {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := r.cli.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: newName}); err != nil {
		return engineErr(err)
	}
	return nil
}

// Start implements nodeupdater.Runtime.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return engineErr(err)
	}
	return nil
}

// Remove implements nodeupdater.Runtime. It force-removes the container and
// never its volumes.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := r.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: false}); err != nil {
		return engineErr(err)
	}
	return nil
}

// Logs implements nodeupdater.Runtime.
func (r *Runtime) Logs(ctx context.Context, id string, n int) ([]string, error) {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	ins, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, engineErr(err)
	}
	rc, err := r.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return nil, engineErr(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if ins.Container.Config != nil && ins.Container.Config.Tty {
		_, err = io.Copy(&buf, rc)
	} else {
		// Without a TTY the stream is multiplexed; interleave both streams
		// in arrival order.
		_, err = stdcopy.StdCopy(&buf, &buf, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("read logs of %s: %w", id, err)
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

// CreateReplacement implements nodeupdater.Runtime: it inspects the old
// container and its image, derives the new container's configuration with
// replacementConfig, creates it on its primary network and connects the
// others. A container left half-connected is removed again.
func (r *Runtime) CreateReplacement(ctx context.Context, oldID, name, image string, labels map[string]string) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx, callTimeout)
	defer cancel()
	old, err := r.cli.ContainerInspect(ctx, oldID, client.ContainerInspectOptions{})
	if err != nil {
		return "", engineErr(fmt.Errorf("inspect old container: %w", err))
	}
	img, err := r.cli.ImageInspect(ctx, old.Container.Image)
	switch {
	case cerrdefs.IsNotFound(err):
		// The old image is gone: its defaults cannot be told apart from
		// user settings, so all are kept.
		img.Config = nil
	case err != nil:
		return "", engineErr(fmt.Errorf("inspect old image %s: %w", old.Container.Image, err))
	}
	opts, extra := replacementConfig(old.Container, img.Config, name, image, labels)
	created, err := r.cli.ContainerCreate(ctx, opts)
	if err != nil {
		return "", engineErr(err)
	}
	for _, a := range extra {
		if _, err := r.cli.NetworkConnect(ctx, a.network, client.NetworkConnectOptions{Container: created.ID, EndpointConfig: a.endpoint}); err != nil {
			rmCtx, rmCancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
			defer rmCancel()
			_, rmErr := r.cli.ContainerRemove(rmCtx, created.ID, client.ContainerRemoveOptions{Force: true})
			if rmErr != nil {
				rmErr = fmt.Errorf("remove half-connected container %s: %w", shortID(created.ID), rmErr)
			}
			return "", errors.Join(engineErr(fmt.Errorf("connect network %s: %w", a.network, err)), rmErr)
		}
	}
	return created.ID, nil
}

// engineError keeps the engine's message while matching the updater's
// sentinels.
type engineError struct {
	kind error
	err  error
}

func (e *engineError) Error() string   { return e.err.Error() }
func (e *engineError) Unwrap() []error { return []error{e.kind, e.err} }

// engineErr classifies an engine error: unreachable engine, missing object,
// or as is.
func engineErr(err error) error {
	switch {
	case err == nil:
		return nil
	case client.IsErrConnectionFailed(err):
		return &engineError{kind: nodeupdater.ErrUnavailable, err: err}
	case cerrdefs.IsNotFound(err):
		return &engineError{kind: nodeupdater.ErrNotFound, err: err}
	default:
		return err
	}
}

// withDefaultTimeout applies d when ctx has no deadline, so no engine call
// can hang forever.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// layerProgress follows the per-layer messages of a pull.
type layerProgress struct {
	done          map[string]bool
	current, size map[string]int64
}

// update records one progress message and reports whether it concerned a layer.
func (l *layerProgress) update(id, status string, p *jsonstream.Progress) bool {
	if id == "" || strings.HasPrefix(status, "Pulling from") || strings.HasPrefix(status, "Digest") || strings.HasPrefix(status, "Status") {
		return false
	}
	if l.done == nil {
		l.done, l.current, l.size = map[string]bool{}, map[string]int64{}, map[string]int64{}
	}
	if _, ok := l.done[id]; !ok {
		l.done[id] = false
	}
	switch {
	case status == "Pull complete" || status == "Already exists":
		l.done[id] = true
	case status == "Downloading" && p != nil:
		l.current[id], l.size[id] = p.Current, p.Total
	case status == "Download complete":
		l.current[id] = l.size[id]
	}
	return true
}

func (l *layerProgress) snapshot() nodeupdater.PullProgress {
	var p nodeupdater.PullProgress
	for id, done := range l.done {
		p.LayersTotal++
		if done {
			p.LayersDone++
		}
		p.BytesDone += l.current[id]
		p.BytesTotal += l.size[id]
	}
	return p
}
