package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
)

// NodeSpec is one simulated node and the containers it starts with.
type NodeSpec struct {
	// Name is the node name (a NATS subject token).
	Name string
	// Containers run on the node from the start, healthy.
	Containers []ContainerSpec
}

// FleetConfig configures a Fleet.
type FleetConfig struct {
	// Nodes are the simulated nodes.
	Nodes []NodeSpec
	// Seed seeds every node's runtime (with its name).
	Seed int64
	// Latency and Failures apply to every node.
	Latency  Latencies
	Failures Failures
	// FailFirstPulls and Registry are every node's Config.FailFirstPulls
	// and Config.Registry.
	FailFirstPulls int
	Registry       string
	// PullAttempts, PullBackoff and PullBackoffMax are every
	// node-updater's pull retry settings (zero: the node-updater's
	// defaults, 5 attempts, 1s doubled up to 30s).
	PullAttempts                int
	PullBackoff, PullBackoffMax time.Duration
	// Logger receives the updaters' logs (default: discarded, a fleet of
	// thousands would drown anything else).
	Logger *slog.Logger
	// AgentVersion is reported by the updaters (default "sim").
	AgentVersion string
	// HeartbeatEvery and InventoryEvery are passed to every updater (zero
	// takes the updater's defaults, as a real fleet would).
	HeartbeatEvery, InventoryEvery time.Duration
	// StartConcurrency bounds how many updaters start at once (default 32).
	StartConcurrency int
}

// Fleet runs one real nodeupdater.Updater per simulated node in this
// process. Create it with StartFleet, stop it with Close.
type Fleet struct {
	runtimes map[string]*Runtime
	order    []string
	mu       sync.Mutex // guards updaters
	updaters []*nodeupdater.Updater
}

// StartFleet creates each node's Runtime and starts its Updater on one of
// jss (round robin: several connections spread the load of thousands of
// consumers the way separate hosts would). It returns once every updater
// has published its inventory and consumes its commands. On error it stops
// what it started.
func StartFleet(ctx context.Context, jss []jetstream.JetStream, cfg FleetConfig) (_ *Fleet, err error) {
	if len(jss) == 0 {
		return nil, errors.New("start simulated fleet: no JetStream connection given")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "sim"
	}
	if cfg.StartConcurrency <= 0 {
		cfg.StartConcurrency = 32
	}
	f := &Fleet{runtimes: map[string]*Runtime{}}
	defer func() {
		if err != nil {
			_ = f.Close(context.WithoutCancel(ctx))
		}
	}()
	updaters := make([]*nodeupdater.Updater, 0, len(cfg.Nodes))
	for i, n := range cfg.Nodes {
		if _, dup := f.runtimes[n.Name]; dup {
			return nil, fmt.Errorf("start simulated fleet: node %s is listed twice", n.Name)
		}
		rt, err := New(Config{Node: n.Name, Seed: cfg.Seed, Latency: cfg.Latency, Failures: cfg.Failures, FailFirstPulls: cfg.FailFirstPulls, Registry: cfg.Registry}, n.Containers)
		if err != nil {
			return nil, err
		}
		u, err := nodeupdater.New(nodeupdater.Config{
			Node: n.Name, AgentVersion: cfg.AgentVersion, Logger: cfg.Logger,
			HeartbeatEvery: cfg.HeartbeatEvery, InventoryEvery: cfg.InventoryEvery,
			PullAttempts: cfg.PullAttempts, PullBackoff: cfg.PullBackoff, PullBackoffMax: cfg.PullBackoffMax,
		}, jss[i%len(jss)], rt)
		if err != nil {
			return nil, err
		}
		f.runtimes[n.Name] = rt
		f.order = append(f.order, n.Name)
		updaters = append(updaters, u)
	}

	sem := make(chan struct{}, cfg.StartConcurrency)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var errs []error
	for _, u := range updaters {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := u.Start(ctx); err != nil {
				errMu.Lock()
				errs = append(errs, err)
				errMu.Unlock()
				return
			}
			f.mu.Lock()
			f.updaters = append(f.updaters, u)
			f.mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("start simulated fleet (%d of %d updaters failed): %w", len(errs), len(updaters), err)
	}
	return f, nil
}

// Nodes returns the node names in the order they were given.
func (f *Fleet) Nodes() []string { return f.order }

// Runtime returns a node's simulated runtime, or nil.
func (f *Fleet) Runtime(node string) *Runtime { return f.runtimes[node] }

// Close stops every updater (each finishing the command in progress until
// ctx is done) and waits for them.
func (f *Fleet) Close(ctx context.Context) error {
	f.mu.Lock()
	us := f.updaters
	f.updaters = nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(us))
	for i, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = u.Close(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Generate returns nodes simulated nodes named node00001... each running
// one container per service (svc01...), with image(service) as its image.
func Generate(nodes, services int, image func(service string) string) []NodeSpec {
	out := make([]NodeSpec, 0, nodes)
	for i := range nodes {
		n := NodeSpec{Name: fmt.Sprintf("node%05d", i+1)}
		for s := range services {
			svc := ServiceName(s)
			n.Containers = append(n.Containers, ContainerSpec{Name: svc, Service: svc, Image: image(svc)})
		}
		out = append(out, n)
	}
	return out
}

// ServiceName is the name Generate gives the i-th service (from 0).
func ServiceName(i int) string { return fmt.Sprintf("svc%02d", i+1) }
