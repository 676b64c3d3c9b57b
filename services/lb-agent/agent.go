package lbagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/lb-agent/haproxy"
)

// Server names a container's place in the load balancer.
type Server struct {
	Backend, Server string
}

// Config configures an Agent.
type Config struct {
	// Name identifies the agent in its durable consumer and its events (default "lb-agent").
	Name string
	// Servers maps a container to its backend server. A key is
	// "node/container", or a bare container name that stands for that name
	// on any node (fine when names are unique across nodes; Kolla's are not:
	// every controller runs a nova_api).
	Servers map[string]Server
	// Backends maps a container name to a backend whose servers are named
	// after the nodes, as Kolla's HAProxy configuration names them: the
	// container on node N is server N of the backend. Servers entries take
	// precedence. Events about containers neither map names are ignored.
	Backends map[string]string
	// DrainTimeout bounds the wait for a server's sessions to end (default 30s).
	DrainTimeout time.Duration
	// Lookback is how far back the agent's durable consumer starts when it
	// is first created (default 5m). A drain request is only worth acting on
	// while its node-updater waits for the acknowledgement (the release's
	// drain_ack_timeout), so an agent started mid-upgrade must see the
	// requests of the last moments, and one started on a cluster with a
	// history must not drain and restore every server of every past
	// upgrade. Set it above the longest drain_ack_timeout. An existing
	// consumer resumes where it stopped, whatever this says.
	Lookback time.Duration
	// Logger receives lifecycle logs at Info and per-event logs at Debug.
	Logger *slog.Logger
}

// Defaults of Config: the one place they are written (cmd/lb-agent's
// flags default to zero and say these in their help).
const (
	DefaultName         = "lb-agent"
	DefaultDrainTimeout = 30 * time.Second
	DefaultLookback     = 5 * time.Minute
)

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Lookback == 0 {
		c.Lookback = DefaultLookback
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate returns every problem with the config at once, each naming the
// entry and the form it wants. A zero field stands for its default.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 && len(c.Backends) == 0 {
		errs = append(errs, errors.New("lb-agent config: no servers; map each container to its backend/server, or each container name to a backend whose servers are named after the nodes"))
	}
	if c.Name != "" && strings.ContainsAny(c.Name, ".*> \t\r\n") {
		errs = append(errs, fmt.Errorf("lb-agent config: name %q contains one of . * > or whitespace; it names a durable consumer: use letters, digits, '-' or '_' (default %q)", c.Name, DefaultName))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("lb-agent config: drain timeout %v is negative; set a positive duration, or 0 for the default %v", c.DrainTimeout, DefaultDrainTimeout))
	}
	if c.Lookback < 0 {
		errs = append(errs, fmt.Errorf("lb-agent config: lookback %v is negative; set a positive duration, or 0 for the default %v", c.Lookback, DefaultLookback))
	}
	for _, key := range slices.Sorted(maps.Keys(c.Servers)) {
		srv := c.Servers[key]
		container := key
		if node, c, hasNode := strings.Cut(key, "/"); hasNode {
			if node == "" {
				container = ""
			} else {
				container = c
			}
		}
		if container == "" || strings.Contains(container, "/") || srv.Backend == "" || srv.Server == "" {
			errs = append(errs, fmt.Errorf("lb-agent config: server %q=%q: want [node/]container=backend/server, e.g. controller1/nova_api=nova_api_back/controller1", key, srv.Backend+"/"+srv.Server))
		}
	}
	for _, container := range slices.Sorted(maps.Keys(c.Backends)) {
		if backend := c.Backends[container]; container == "" || backend == "" || strings.Contains(container, "/") {
			errs = append(errs, fmt.Errorf("lb-agent config: backend %q=%q: want container=backend, e.g. nova_api=nova_api_back", container, backend))
		}
	}
	return errors.Join(errs...)
}

// balancer is what the agent needs of a load balancer; *haproxy.Client has it.
type balancer interface {
	Drain(ctx context.Context, backend, server string, timeout time.Duration) error
	SetState(ctx context.Context, backend, server, state string) error
}

var _ balancer = (*haproxy.Client)(nil)

// Agent follows node-updaters' events and drives the load balancer.
type Agent struct {
	cfg      Config
	js       jetstream.JetStream
	lb       balancer
	pub      *events.Publisher
	consumer *events.Consumer
	log      *slog.Logger
}

// New returns an Agent; Start runs it.
func New(cfg Config, js jetstream.JetStream, lb balancer) (*Agent, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, js: js, lb: lb, pub: events.NewPublisher(js), log: cfg.Logger.With("agent", cfg.Name)}, nil
}

// Start runs the agent's durable consumer on every node's status subject.
func (a *Agent) Start(ctx context.Context) error {
	c, err := events.Consume(ctx, a.js, events.ConsumerConfig{
		Durable:        a.cfg.Name,
		FilterSubjects: []string{events.SubjectNodeStatusAll},
		Service:        "lb-agent",
		StartTime:      time.Now().Add(-a.cfg.Lookback),
		Logger:         a.log,
	}, a.handle)
	if err != nil {
		return err
	}
	a.consumer = c
	return nil
}

// Close stops the consumer, letting a drain in progress finish until ctx is done.
func (a *Agent) Close(ctx context.Context) error {
	if a.consumer == nil {
		return nil
	}
	return a.consumer.Close(ctx)
}

func (a *Agent) handle(ctx context.Context, e events.Event) error {
	switch e.Type() {
	case events.TypeContainerDraining:
		d, err := events.DataAs[events.ContainerDraining](e)
		if err != nil {
			return err
		}
		return a.drain(ctx, e, events.NodeID(e), d.Container)
	case events.TypeContainerReplaced:
		d, err := events.DataAs[events.ContainerReplaced](e)
		if err != nil {
			return err
		}
		return a.ready(ctx, events.NodeID(e), d.Container)
	case events.TypeContainerReverted:
		d, err := events.DataAs[events.ContainerReverted](e)
		if err != nil {
			return err
		}
		return a.ready(ctx, events.NodeID(e), d.Container)
	case events.TypeNodeUpdateFailed:
		// A failure before the stop (e.g. a drain that was never confirmed)
		// leaves the old container serving: put it back.
		d, err := events.DataAs[events.NodeUpdateFailed](e)
		if err != nil {
			return err
		}
		return a.ready(ctx, events.NodeID(e), d.Container)
	}
	return nil
}

// server returns where the container called container on node sits in the
// load balancer, if this agent knows.
func (a *Agent) server(node, container string) (Server, bool) {
	if node != "" {
		if srv, ok := a.cfg.Servers[node+"/"+container]; ok {
			return srv, true
		}
	}
	if srv, ok := a.cfg.Servers[container]; ok {
		return srv, true
	}
	if backend, ok := a.cfg.Backends[container]; ok && node != "" {
		return Server{Backend: backend, Server: node}, true
	}
	return Server{}, false
}

func (a *Agent) drain(ctx context.Context, cause events.Event, node, container string) error {
	srv, ok := a.server(node, container)
	if !ok {
		return nil
	}
	start := time.Now()
	err := a.lb.Drain(ctx, srv.Backend, srv.Server, a.cfg.DrainTimeout)
	switch {
	case errors.Is(err, haproxy.ErrSessionsRemain):
		// The server is in maintenance: no new traffic. Sessions still open
		// after the timeout are cut by the stop; say so and go on.
		a.log.Warn("drain timed out with sessions open", "node", node, "container", container, "server", srv.Backend+"/"+srv.Server, "err", err)
	case err != nil:
		return fmt.Errorf("drain %s (%s/%s): %w", container, srv.Backend, srv.Server, err)
	}
	a.log.Info("container drained", "node", node, "container", container, "server", srv.Backend+"/"+srv.Server, "took", time.Since(start))
	ack, err := events.New(events.Source("lb-agent", a.cfg.Name), events.ContainerDrained{Container: container, Agent: a.cfg.Name},
		events.CausedBy(cause), events.WithNode(events.NodeID(cause)))
	if err != nil {
		return err
	}
	return a.pub.Publish(ctx, ack)
}

func (a *Agent) ready(ctx context.Context, node, container string) error {
	srv, ok := a.server(node, container)
	if !ok {
		return nil
	}
	if err := a.lb.SetState(ctx, srv.Backend, srv.Server, haproxy.StateReady); err != nil {
		return fmt.Errorf("put %s (%s/%s) back in rotation: %w", container, srv.Backend, srv.Server, err)
	}
	a.log.Info("container back in rotation", "node", node, "container", container, "server", srv.Backend+"/"+srv.Server)
	return nil
}
