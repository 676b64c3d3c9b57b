package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutover-dev/cutover/events"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
)

// Name is the runtime's name in inventories and heartbeats.
const Name = "sim"

// Config configures one node's Runtime.
type Config struct {
	// Node is the node name; containers are labelled dev.cutover.node=Node.
	Node string
	// Seed, with the node name, seeds the runtime's random source: the same
	// seed and calls give the same latencies and failures.
	Seed int64
	// Latency holds the per-step latency distributions (zero: none).
	Latency Latencies
	// Failures holds the per-step failure probabilities (zero: none).
	Failures Failures
	// FailFirstPulls makes the first pulls of images the node did not run
	// when created fail as a refused registry connection would, then
	// succeed: a registry down for a moment.
	FailFirstPulls int
	// Registry, when set, is the registry URL a refused pull's error
	// names, as Docker's errors do. It may carry
	// user:password, as a registry mirror configured with credentials does,
	// so tests can check that no password leaves the node-updater.
	Registry string
}

// ContainerSpec is a container a Runtime starts with, running and healthy.
type ContainerSpec struct {
	// Name is the container name.
	Name string
	// Service is its dev.cutover.service label.
	Service string
	// Image is the image reference it runs.
	Image string
	// WorkloadHost marks a container that hosts workloads.
	WorkloadHost bool
}

// ErrSimulated marks a failure the simulation injected on purpose.
var ErrSimulated = fmt.Errorf("simulated failure")

// Runtime is one simulated node: nodeupdater.Runtime in memory. It is safe
// for concurrent use.
type Runtime struct {
	cfg Config

	mu      sync.Mutex // guards everything below, including rng
	rng     *rand.Rand
	seq     int
	byID    map[string]*container
	byName  map[string]string // name -> id
	present map[string]bool   // image refs pulled on the node
	trusted map[string]bool   // image refs the node ran when it was created
	stats   Stats
	// refusedPulls counts the pulls FailFirstPulls failed so far.
	refusedPulls int
}

// Stats counts what a Runtime did.
type Stats struct {
	Pulls, Starts, Stops, Creates, Removes int
	// PullFailures, StartFailures and HealthFailures count injected failures.
	PullFailures, StartFailures, HealthFailures int
}

// container is one simulated container.
type container struct {
	id, name, image string
	labels          map[string]string
	created         bool // never started yet
	running         bool
	startedAt       time.Time
	stoppedAt       time.Time
	healthAt        time.Time // when the health check reports a verdict
	sick            bool      // the verdict is unhealthy
	exitCode        int
}

var _ nodeupdater.Runtime = (*Runtime)(nil)

// New returns a Runtime for cfg.Node running cs, each started and healthy.
func New(cfg Config, cs []ContainerSpec) (*Runtime, error) {
	if cfg.Node == "" {
		return nil, fmt.Errorf("sim runtime: node name is empty; name the simulated node")
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(cfg.Node))
	r := &Runtime{
		cfg:     cfg,
		rng:     rand.New(rand.NewSource(cfg.Seed ^ int64(h.Sum64()))),
		byID:    map[string]*container{},
		byName:  map[string]string{},
		present: map[string]bool{},
		trusted: map[string]bool{},
	}
	now := time.Now()
	for _, s := range cs {
		if _, dup := r.byName[s.Name]; dup {
			return nil, fmt.Errorf("sim runtime of node %s: container %s is listed twice", cfg.Node, s.Name)
		}
		labels := map[string]string{events.LabelNode: cfg.Node, events.LabelService: s.Service}
		if s.WorkloadHost {
			labels[events.LabelWorkloadHost] = "true"
		}
		c := &container{id: r.newID(), name: s.Name, image: s.Image, labels: labels, running: true, startedAt: now.Add(-time.Minute), healthAt: now.Add(-time.Minute)}
		r.byID[c.id], r.byName[c.name] = c, c.id
		r.present[s.Image], r.trusted[s.Image] = true, true
	}
	return r, nil
}

func (r *Runtime) newID() string {
	r.seq++
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", r.cfg.Node, r.seq))
	return hex.EncodeToString(sum[:])
}

// ImageID returns the simulated image ID of ref: a digest of the reference.
func ImageID(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Name implements nodeupdater.Runtime.
func (r *Runtime) Name() string { return Name }

// Node returns the node this runtime simulates.
func (r *Runtime) Node() string { return r.cfg.Node }

// Stats returns what the runtime did so far.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// draw returns a latency of d and whether an event of probability p
// happens, from the runtime's random source.
func (r *Runtime) draw(d Dist, p float64) (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat := d.Draw(r.rng)
	hit := p > 0 && r.rng.Float64() < p
	return lat, hit
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (r *Runtime) notFound(what string) error {
	return fmt.Errorf("%s on simulated node %s: %w", what, r.cfg.Node, nodeupdater.ErrNotFound)
}

// find returns the container called nameOrID (by name first); r.mu held.
func (r *Runtime) find(nameOrID string) *container {
	if id, ok := r.byName[nameOrID]; ok {
		return r.byID[id]
	}
	return r.byID[nameOrID]
}

// existing finds container id for what (rename container, ...) once ctx
// is checked; r.mu held.
func (r *Runtime) existing(ctx context.Context, what, id string) (*container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c := r.find(id); c != nil {
		return c, nil
	}
	return nil, r.notFound(what + " " + id)
}

// view converts c into the updater's terms at now; r.mu held.
func (c *container) view(now time.Time) nodeupdater.Container {
	out := nodeupdater.Container{
		ID: c.id, Name: c.name, Image: c.image, ImageID: ImageID(c.image),
		Labels: maps.Clone(c.labels), Running: c.running, ExitCode: c.exitCode,
		StartedAt: c.startedAt, StoppedAt: c.stoppedAt, Healthcheck: true,
	}
	switch {
	case c.running:
		out.State = "running"
		switch {
		case now.Before(c.healthAt):
			out.Health = nodeupdater.HealthStarting
		case c.sick:
			out.Health, out.HealthOutput = nodeupdater.HealthUnhealthy, "simulated health check failure"
		default:
			out.Health = nodeupdater.HealthHealthy
		}
	case c.created:
		out.State = "created"
	default:
		out.State = "exited"
	}
	return out
}

// List implements nodeupdater.Runtime.
func (r *Runtime) List(ctx context.Context, node string) ([]nodeupdater.Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := make([]nodeupdater.Container, 0, len(r.byID))
	for _, id := range slices.Sorted(maps.Keys(r.byID)) {
		c := r.byID[id]
		if c.labels[events.LabelNode] == node {
			out = append(out, c.view(now))
		}
	}
	return out, nil
}

// Inspect implements nodeupdater.Runtime.
func (r *Runtime) Inspect(ctx context.Context, nameOrID string) (nodeupdater.Container, error) {
	if err := ctx.Err(); err != nil {
		return nodeupdater.Container{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.find(nameOrID)
	if c == nil {
		return nodeupdater.Container{}, r.notFound("inspect container " + nameOrID)
	}
	return c.view(time.Now()), nil
}

// Pull implements nodeupdater.Runtime. An image already on the node costs
// nothing and never fails.
func (r *Runtime) Pull(ctx context.Context, ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("pull: empty image reference")
	}
	r.mu.Lock()
	present, trusted := r.present[ref], r.trusted[ref]
	r.mu.Unlock()
	if present {
		return ImageID(ref), ctx.Err()
	}
	p := r.cfg.Failures.Pull
	if trusted {
		p = 0
	}
	lat, fail := r.draw(r.cfg.Latency.Pull, p)
	if err := wait(ctx, lat); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Pulls++
	if !trusted && r.refusedPulls < r.cfg.FailFirstPulls {
		r.refusedPulls++
		r.stats.PullFailures++
		if r.cfg.Registry != "" {
			return "", fmt.Errorf("%w: Get %q: dial tcp registry:443: connect: connection refused", ErrSimulated, r.cfg.Registry+"/v2/")
		}
		return "", fmt.Errorf("%w: dial tcp registry:443: connect: connection refused", ErrSimulated)
	}
	if fail {
		r.stats.PullFailures++
		return "", fmt.Errorf("pull %s on node %s: %w: %w: manifest unknown (simulated)", ref, r.cfg.Node, ErrSimulated, nodeupdater.ErrNotFound)
	}
	r.present[ref] = true
	return ImageID(ref), nil
}

// Stop implements nodeupdater.Runtime.
func (r *Runtime) Stop(ctx context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	c := r.find(id)
	running := c != nil && c.running
	r.mu.Unlock()
	if c == nil {
		return r.notFound("stop container " + id)
	}
	if !running {
		return ctx.Err()
	}
	lat, _ := r.draw(r.cfg.Latency.Stop, 0)
	if err := wait(ctx, lat); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.running, c.exitCode, c.stoppedAt = false, 0, time.Now()
	r.stats.Stops++
	return nil
}

// Rename implements nodeupdater.Runtime.
func (r *Runtime) Rename(ctx context.Context, id, newName string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.existing(ctx, "rename container", id)
	if err != nil {
		return err
	}
	if c.name == newName {
		return nil
	}
	if _, taken := r.byName[newName]; taken {
		return fmt.Errorf("rename %s to %s on node %s: the name is in use (conflict)", c.name, newName, r.cfg.Node)
	}
	delete(r.byName, c.name)
	c.name = newName
	r.byName[newName] = c.id
	return nil
}

// CreateReplacement implements nodeupdater.Runtime: the new container keeps
// the old one's labels, with labels set over them.
func (r *Runtime) CreateReplacement(ctx context.Context, oldID, name, image string, labels map[string]string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.find(oldID)
	if old == nil {
		return "", r.notFound("inspect old container " + oldID)
	}
	if !r.present[image] {
		return "", r.notFound("image " + image + " (pull it first)")
	}
	if _, taken := r.byName[name]; taken {
		return "", fmt.Errorf("create %s on node %s: the name is in use (conflict)", name, r.cfg.Node)
	}
	kept := maps.Clone(old.labels)
	if kept == nil {
		kept = map[string]string{}
	}
	maps.Copy(kept, labels)
	c := &container{id: r.newID(), name: name, image: image, labels: kept, created: true}
	r.byID[c.id], r.byName[name] = c, c.id
	r.stats.Creates++
	return c.id, nil
}

// Start implements nodeupdater.Runtime. A new container of an image the
// node did not run at creation may fail to start, or start and later turn
// unhealthy, with the configured probabilities.
func (r *Runtime) Start(ctx context.Context, id string) error {
	r.mu.Lock()
	c := r.find(id)
	var fresh, trusted bool
	if c != nil {
		fresh, trusted = c.created, r.trusted[c.image]
	}
	r.mu.Unlock()
	if c == nil {
		return r.notFound("start container " + id)
	}
	pStart, pHealth := r.cfg.Failures.Start, r.cfg.Failures.Health
	if trusted || !fresh {
		pStart, pHealth = 0, 0
	}
	lat, failStart := r.draw(r.cfg.Latency.Start, pStart)
	health, sick := r.draw(r.cfg.Latency.Health, pHealth)
	if err := wait(ctx, lat); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Starts++
	if failStart {
		r.stats.StartFailures++
		c.created, c.exitCode = false, 1
		return fmt.Errorf("start %s on node %s: %w: container exited at once", c.name, r.cfg.Node, ErrSimulated)
	}
	if sick {
		r.stats.HealthFailures++
	}
	now := time.Now()
	c.created, c.running, c.startedAt, c.healthAt, c.sick, c.exitCode = false, true, now, now.Add(health), sick, 0
	return nil
}

// Remove implements nodeupdater.Runtime.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.existing(ctx, "remove container", id)
	if err != nil {
		return err
	}
	delete(r.byID, c.id)
	delete(r.byName, c.name)
	r.stats.Removes++
	return nil
}

// Logs implements nodeupdater.Runtime with one line saying what the
// simulation did.
func (r *Runtime) Logs(ctx context.Context, id string, n int) ([]string, error) {
	c, err := r.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	lines := []string{fmt.Sprintf("simulated container %s (%s) on node %s: state %s, health %s", c.Name, c.Image, r.cfg.Node, c.State, c.Health)}
	if n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// Exec implements nodeupdater.Runtime: every command succeeds in a running
// container.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	c, err := r.Inspect(ctx, id)
	if err != nil {
		return 0, "", err
	}
	if !c.Running {
		return 0, "", fmt.Errorf("exec %q in %s on node %s: container is not running", strings.Join(cmd, " "), c.Name, r.cfg.Node)
	}
	return 0, "", nil
}

// Serving returns, per container name that does not carry a replacement
// suffix, whether a container by that name runs and is healthy now.
func (r *Runtime) Serving() map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	out := map[string]bool{}
	for _, c := range r.byID {
		if strings.HasSuffix(c.name, nodeupdater.OldSuffix) || strings.HasSuffix(c.name, nodeupdater.NewSuffix) {
			continue
		}
		v := c.view(now)
		out[c.name] = v.Running && v.Health == nodeupdater.HealthHealthy
	}
	return out
}

// Images returns the image each container name runs.
func (r *Runtime) Images() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, c := range r.byID {
		out[c.name] = c.image
	}
	return out
}
