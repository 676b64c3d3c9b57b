package testkit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Labels the fixtures put on what they create.
const (
	// LabelNode names the cutover node a container belongs to.
	LabelNode = "dev.cutover.node"
	// LabelService names the service a container runs.
	LabelService = "dev.cutover.service"
	// LabelTest marks everything a test run created, so Cleanup can find it.
	// CreateContainer copies it from ContainerOpts.Labels onto the volumes it
	// creates.
	LabelTest = "dev.cutover.test"
)

// Default timeouts, applied only when the caller's ctx has no deadline.
const (
	pingTimeout    = 5 * time.Second
	dockerTimeout  = time.Minute
	waitTimeout    = 2 * time.Minute
	pollInterval   = 200 * time.Millisecond
	cleanupTimeout = time.Minute
)

// DockerAvailable connects to the engine configured by the environment
// (DOCKER_HOST and friends, else the local socket), negotiates the API
// version and pings it with a short timeout. It returns an error when no
// engine answers; tests skip on it:
//
//	cli, err := testkit.DockerAvailable(t.Context())
//	if err != nil {
//		t.Skipf("docker engine not reachable: %v", err)
//	}
//
// The caller owns the client and closes it.
func DockerAvailable(ctx context.Context) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("create docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, errors.Join(fmt.Errorf("ping docker engine: %w", err), cli.Close())
	}
	return cli, nil
}

// PullImage pulls ref through the engine and waits until the pull finishes,
// returning any error the engine reported in the progress stream.
func PullImage(ctx context.Context, cli *client.Client, ref string) error {
	ctx, cancel := withDefaultTimeout(ctx, 2*dockerTimeout)
	defer cancel()
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	defer resp.Close()
	if err := resp.Wait(ctx); err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	return nil
}

// EnsureNetwork creates a user-defined bridge network called name with the
// given IPv4 subnet (CIDR, e.g. "10.201.7.0/24") unless one with that name
// exists. An empty subnet lets Docker pick one. An existing network whose
// subnets do not include subnet is an error rather than a silent surprise.
func EnsureNetwork(ctx context.Context, cli *client.Client, name, subnet string) error {
	ctx, cancel := withDefaultTimeout(ctx, dockerTimeout)
	defer cancel()

	var prefix netip.Prefix
	if subnet != "" {
		p, err := netip.ParsePrefix(subnet)
		if err != nil {
			return fmt.Errorf("parse subnet %q for network %s: %w", subnet, name, err)
		}
		prefix = p.Masked()
	}

	existing, err := cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	switch {
	case err == nil:
		if !prefix.IsValid() {
			return nil
		}
		for _, c := range existing.Network.IPAM.Config {
			if c.Subnet.Masked() == prefix {
				return nil
			}
		}
		return fmt.Errorf("ensure network %s: it exists without subnet %s; remove it or pick another name", name, prefix)
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect network %s: %w", name, err)
	}

	opts := client.NetworkCreateOptions{Driver: "bridge"}
	if prefix.IsValid() {
		opts.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: prefix}}}
	}
	if _, err := cli.NetworkCreate(ctx, name, opts); err != nil {
		return fmt.Errorf("create network %s: %w", name, err)
	}
	return nil
}

// ContainerOpts describes a container the way a deployment would create it.
type ContainerOpts struct {
	// Name is the container name; empty lets Docker pick one.
	Name string
	// Image is the image reference (tag, digest or ID).
	Image string
	// Node and Service become the LabelNode and LabelService labels when set.
	Node, Service string
	// Labels are extra container labels. A LabelTest entry is also put on
	// the volumes CreateContainer creates.
	Labels map[string]string
	// Env is appended to the image's environment.
	Env []string
	// Volumes maps named volume -> mount path in the container. Missing
	// volumes are created; existing ones are reused and never removed.
	Volumes map[string]string
	// Binds are raw bind specs ("/host:/ctr:ro" or "vol:/ctr").
	Binds []string
	// Network is a user-defined network to attach to; empty means the
	// default bridge. Aliases and IPv4 need it.
	Network string
	// Aliases are DNS names of the container on Network.
	Aliases []string
	// IPv4 is a static address on Network, inside its subnet.
	IPv4 string
	// Ports maps a container port ("8080/tcp") to a host port ("18080").
	// An empty host port exposes the port without publishing it.
	Ports map[string]string
	// RestartPolicy is "no", "always", "on-failure" or "unless-stopped";
	// empty means "no".
	RestartPolicy string
}

// CreateContainer creates the named volumes that do not exist yet, then
// creates and starts the container, returning its ID. If the start fails the
// container is removed again so no half-made container is left behind (its
// volumes stay).
func CreateContainer(ctx context.Context, cli *client.Client, opts ContainerOpts) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx, dockerTimeout)
	defer cancel()

	what := opts.Name
	if what == "" {
		what = "from " + opts.Image
	}
	create, err := createOptions(opts)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", what, err)
	}

	var volLabels map[string]string
	if v, ok := opts.Labels[LabelTest]; ok {
		volLabels = map[string]string{LabelTest: v}
	}
	for _, vol := range slices.Sorted(maps.Keys(opts.Volumes)) {
		if err := ensureVolume(ctx, cli, vol, volLabels); err != nil {
			return "", fmt.Errorf("create container %s: %w", what, err)
		}
	}

	created, err := cli.ContainerCreate(ctx, create)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", what, err)
	}
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		rmCtx, rmCancel := context.WithTimeout(context.WithoutCancel(ctx), dockerTimeout)
		defer rmCancel()
		_, rmErr := cli.ContainerRemove(rmCtx, created.ID, client.ContainerRemoveOptions{Force: true})
		if rmErr != nil {
			rmErr = fmt.Errorf("remove unstarted container %s: %w", created.ID, rmErr)
		}
		return "", errors.Join(fmt.Errorf("start container %s: %w", what, err), rmErr)
	}
	return created.ID, nil
}

func createOptions(opts ContainerOpts) (client.ContainerCreateOptions, error) {
	if opts.Image == "" {
		return client.ContainerCreateOptions{}, errors.New("ContainerOpts.Image is empty")
	}
	if opts.Network == "" && (opts.IPv4 != "" || len(opts.Aliases) > 0) {
		return client.ContainerCreateOptions{}, errors.New("ContainerOpts.IPv4 and Aliases need a Network")
	}

	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if opts.Node != "" {
		labels[LabelNode] = opts.Node
	}
	if opts.Service != "" {
		labels[LabelService] = opts.Service
	}

	cfg := &container.Config{
		Image:  opts.Image,
		Env:    opts.Env,
		Labels: labels,
	}
	host := &container.HostConfig{
		Binds:         append([]string(nil), opts.Binds...),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(opts.RestartPolicy)},
	}
	for _, vol := range slices.Sorted(maps.Keys(opts.Volumes)) {
		host.Binds = append(host.Binds, vol+":"+opts.Volumes[vol])
	}
	if len(opts.Ports) > 0 {
		cfg.ExposedPorts = network.PortSet{}
		host.PortBindings = network.PortMap{}
		for spec, hostPort := range opts.Ports {
			p, err := network.ParsePort(spec)
			if err != nil {
				return client.ContainerCreateOptions{}, fmt.Errorf("parse port %q: %w", spec, err)
			}
			cfg.ExposedPorts[p] = struct{}{}
			if hostPort != "" {
				host.PortBindings[p] = []network.PortBinding{{HostPort: hostPort}}
			}
		}
	}

	var netCfg *network.NetworkingConfig
	if opts.Network != "" {
		host.NetworkMode = container.NetworkMode(opts.Network)
		ep := &network.EndpointSettings{Aliases: opts.Aliases}
		if opts.IPv4 != "" {
			ip, err := netip.ParseAddr(opts.IPv4)
			if err != nil || !ip.Is4() {
				return client.ContainerCreateOptions{}, fmt.Errorf("parse IPv4 %q: not an IPv4 address", opts.IPv4)
			}
			ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		}
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{opts.Network: ep}}
	}

	return client.ContainerCreateOptions{
		Name:             opts.Name,
		Config:           cfg,
		HostConfig:       host,
		NetworkingConfig: netCfg,
	}, nil
}

func ensureVolume(ctx context.Context, cli *client.Client, name string, labels map[string]string) error {
	_, err := cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err == nil {
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Labels: labels}); err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// ErrContainerExited is returned by WaitHealth when the container stops
// before reaching the wanted health status.
var ErrContainerExited = errors.New("container exited")

// WaitHealth polls the container until Docker reports the wanted health
// status ("healthy", "unhealthy"), the container stops running
// (ErrContainerExited), or ctx ends. It returns the last inspection.
func WaitHealth(ctx context.Context, cli *client.Client, id string, want container.HealthStatus) (container.InspectResponse, error) {
	return waitContainer(ctx, cli, id, "health "+string(want), func(c container.InspectResponse) (bool, error) {
		if c.State.Health != nil && c.State.Health.Status == want {
			return true, nil
		}
		if !c.State.Running && !c.State.Restarting && c.State.Status != container.StateCreated {
			return false, fmt.Errorf("%w with code %d", ErrContainerExited, c.State.ExitCode)
		}
		return false, nil
	})
}

// WaitExit polls the container until it has stopped (state exited or dead)
// or ctx ends, and returns the last inspection; its State.ExitCode is the
// exit code.
func WaitExit(ctx context.Context, cli *client.Client, id string) (container.InspectResponse, error) {
	return waitContainer(ctx, cli, id, "exit", func(c container.InspectResponse) (bool, error) {
		return c.State.Status == container.StateExited || c.State.Status == container.StateDead, nil
	})
}

func waitContainer(ctx context.Context, cli *client.Client, id, what string, done func(container.InspectResponse) (bool, error)) (container.InspectResponse, error) {
	ctx, cancel := withDefaultTimeout(ctx, waitTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last container.InspectResponse
	for {
		res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return last, fmt.Errorf("wait for container %s %s: %w", shortID(id), what, err)
		}
		last = res.Container
		if last.State != nil {
			ok, err := done(last)
			if err != nil {
				return last, fmt.Errorf("wait for container %s %s: %w", shortID(id), what, err)
			}
			if ok {
				return last, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("wait for container %s %s (state %s): %w", shortID(id), what, describeState(last), ctx.Err())
		case <-tick.C:
		}
	}
}

func describeState(c container.InspectResponse) string {
	if c.State == nil {
		return "unknown"
	}
	s := string(c.State.Status)
	if c.State.Health != nil {
		s += ", health " + string(c.State.Health.Status)
	}
	return s
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Cleanup force-removes every container, then every image, volume and
// network, carrying label ("key=value", usually LabelTest+"="+runID). It is for
// tests, and keeps going past failures, returning them all.
func Cleanup(ctx context.Context, cli *client.Client, label string) error {
	if !strings.Contains(label, "=") {
		return fmt.Errorf("clean up by label %q: want key=value", label)
	}
	ctx, cancel := withDefaultTimeout(ctx, cleanupTimeout)
	defer cancel()
	filter := client.Filters{}.Add("label", label)
	var errs []error

	containers, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers labelled %s: %w", label, err))
	}
	for _, c := range containers.Items {
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(c.ID), err))
		}
	}

	// Then images: the containers that used them are gone. A test image
	// carries its run's label in its config, so only this run's go.
	images, err := cli.ImageList(ctx, client.ImageListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list images labelled %s: %w", label, err))
	}
	for _, img := range images.Items {
		_, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove image %s: %w", shortID(img.ID), err))
		}
	}

	volumes, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes labelled %s: %w", label, err))
	}
	for _, v := range volumes.Items {
		_, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}

	networks, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks labelled %s: %w", label, err))
	}
	for _, n := range networks.Items {
		_, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}
