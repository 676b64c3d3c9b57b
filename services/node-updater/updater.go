package nodeupdater

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// serviceName is the updater's name in event sources and consumer names.
const serviceName = "node-updater"

// publishTimeout bounds one inventory put or event publish made outside a
// command's context (start-up, the periodic loop, cleanup after a cancel).
const publishTimeout = 10 * time.Second

// Updater replaces the containers of one node on command. Create it with New,
// run it with Start, stop it with Close.
type Updater struct {
	cfg Config
	js  jetstream.JetStream
	rt  Runtime
	pub *events.Publisher
	// out publishes status events in order and holds them while the bus is
	// unreachable; its goroutine runs from Start to Close.
	out *outbox
	log *slog.Logger

	mu       sync.Mutex // guards the lifecycle fields below
	started  bool
	nodes    jetstream.KeyValue
	consumer *events.Consumer
	cancel   context.CancelFunc // stops the periodic loop
	wg       sync.WaitGroup
	stopOut  context.CancelFunc // stops the outbox
	outWG    sync.WaitGroup

	prevMu sync.Mutex
	// previous remembers, per container name, the image it ran before its
	// last replacement, so the inventory can offer it for rollback. It is
	// seeded from the node's KV entry on Start.
	previous map[string]string
	// recovered remembers, per container name, a replacement that recovery
	// finished or reverted after a crash: the redelivered command then
	// reports it as replaced rather than unchanged, or counts the outage
	// of the reverted try in its own interruption.
	recovered map[string]recoveredReplacement
}

// recoveredReplacement is a replacement that recovery committed or
// reverted.
type recoveredReplacement struct {
	fromImage, fromImageID, toImageID string
	// reverted says recovery went back to the old container.
	reverted bool
	// outage is how long the container did not serve, from the old one's
	// stop until the new one passed its gate (committed) or the old one
	// served again (reverted); unknown says the engine could not tell when
	// the old one stopped.
	outage  time.Duration
	unknown bool
	// reported says recovery published the committed replacement.
	reported bool
}

// stepDone calls the AfterStep hook.
func (u *Updater) stepDone(step string) {
	if u.cfg.AfterStep != nil {
		u.cfg.AfterStep(step)
	}
}

// New returns an Updater for cfg.Node that reads commands and writes state
// through js and drives containers through rt. It does no I/O.
func New(cfg Config, js jetstream.JetStream, rt Runtime) (*Updater, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node-updater config: %w", err)
	}
	if js == nil || rt == nil {
		return nil, errors.New("node-updater: JetStream and Runtime are required")
	}
	if len(cfg.Adopt) > 0 {
		rt = adopting(rt, cfg.Node, cfg.Adopt)
	}
	log := cfg.Logger.With("node", cfg.Node)
	pub := events.NewPublisher(js)
	return &Updater{
		cfg:       cfg,
		js:        js,
		rt:        rt,
		pub:       pub,
		out:       newOutbox(pub, log),
		log:       log,
		previous:  map[string]string{},
		recovered: map[string]recoveredReplacement{},
	}, nil
}

// Start recovers replacements a crash left unfinished, publishes the
// inventory, starts the durable command consumer and the periodic
// inventory and heartbeat loop. ctx bounds start-up only; the updater runs
// until Close.
func (u *Updater) Start(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.started {
		return errors.New("node-updater: already started")
	}

	nodes, err := u.js.KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return fmt.Errorf("open KV bucket %s: %w (run events.Setup first)", events.BucketNodes, err)
	}
	processed, err := u.js.KeyValue(ctx, events.BucketProcessed)
	if err != nil {
		return fmt.Errorf("open KV bucket %s: %w (run events.Setup first)", events.BucketProcessed, err)
	}
	u.nodes = nodes
	u.seedPrevious(ctx)

	// The outbox runs first: recovery reports what it did through it.
	outCtx, stopOut := context.WithCancel(context.WithoutCancel(ctx))
	u.outWG.Add(1)
	go func() {
		defer u.outWG.Done()
		u.out.run(outCtx)
	}()
	fail := func(err error) error {
		stopOut()
		u.outWG.Wait()
		return err
	}

	// Recovery runs before consuming so no command sees a half-replaced
	// container.
	if err := u.recoverAll(ctx); err != nil {
		return fail(err)
	}
	if err := u.publishInventory(ctx); err != nil {
		return fail(err)
	}

	consumer, err := events.Consume(ctx, u.js, events.ConsumerConfig{
		Durable:        "node-updater-" + u.cfg.Node,
		FilterSubjects: []string{events.NodeCmdSubject(u.cfg.Node)},
		Service:        serviceName,
		AckWait:        u.cfg.AckWait,
		Processed:      processed,
		Logger:         u.log,
	}, u.handle)
	if err != nil {
		return fail(err)
	}
	u.consumer = consumer
	u.stopOut = stopOut

	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u.cancel = cancel
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		u.loop(loopCtx)
	}()
	if u.cfg.HeartbeatEvery > 0 {
		if err := u.heartbeat(ctx); err != nil {
			u.log.Warn("send heartbeat", "err", err)
		}
	}
	u.started = true
	u.log.Info("node-updater started", "runtime", u.rt.Name(), "version", u.cfg.AgentVersion)
	return nil
}

// Close stops consuming commands, lets the replacement in progress finish
// until ctx is done (then cancels it, which reverts it), publishes the
// status events still held (until ctx is done), stops the periodic loop
// and waits for everything to end.
func (u *Updater) Close(ctx context.Context) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.started {
		return nil
	}
	u.started = false
	err := u.consumer.Close(ctx)
	u.cancel()
	u.wg.Wait()
	ferr := u.out.flush(ctx)
	u.stopOut()
	u.outWG.Wait()
	u.log.Info("node-updater stopped")
	return errors.Join(err, ferr)
}

// loop refreshes the inventory and sends heartbeats until ctx ends.
func (u *Updater) loop(ctx context.Context) {
	inv := time.NewTicker(u.cfg.InventoryEvery)
	defer inv.Stop()
	var beat <-chan time.Time
	if u.cfg.HeartbeatEvery > 0 {
		t := time.NewTicker(u.cfg.HeartbeatEvery)
		defer t.Stop()
		beat = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-inv.C:
			if err := u.publishInventory(ctx); err != nil && ctx.Err() == nil {
				u.log.Warn("refresh inventory", "err", err)
			}
		case <-beat:
			if err := u.heartbeat(ctx); err != nil && ctx.Err() == nil {
				u.log.Warn("send heartbeat", "err", err)
			}
		}
	}
}

// Inventory observes the node's containers. Renamed old containers of a
// replacement in progress are left out: they are not part of the
// deployment, and recovery either removes them or renames them back.
func (u *Updater) Inventory(ctx context.Context) (events.NodeInventory, error) {
	list, err := u.rt.List(ctx, u.cfg.Node)
	if err != nil {
		return events.NodeInventory{}, fmt.Errorf("list containers of node %s: %w", u.cfg.Node, err)
	}
	u.prevMu.Lock()
	prev := maps.Clone(u.previous)
	u.prevMu.Unlock()
	inv := events.NodeInventory{
		Node:         u.cfg.Node,
		AgentVersion: u.cfg.AgentVersion,
		Runtime:      u.rt.Name(),
		UpdatedAt:    time.Now().UTC(),
		Containers:   []events.ObservedContainer{},
	}
	for _, c := range list {
		if _, ok := isOldName(c.Name); ok {
			continue
		}
		if _, ok := isNewName(c.Name); ok {
			continue
		}
		inv.Containers = append(inv.Containers, events.ObservedContainer{
			Name:          c.Name,
			ID:            c.ID,
			Service:       c.Service(),
			Image:         c.Image,
			ImageID:       c.ImageID,
			State:         c.State,
			Health:        c.Health,
			WorkloadHost:  c.WorkloadHost(),
			PreviousImage: prev[c.Name],
		})
	}
	slices.SortFunc(inv.Containers, func(a, b events.ObservedContainer) int { return strings.Compare(a.Name, b.Name) })
	return inv, nil
}

// setPrevious records the image name ran before its last replacement; ""
// forgets it.
func (u *Updater) setPrevious(name, image string) {
	u.prevMu.Lock()
	defer u.prevMu.Unlock()
	if image == "" {
		delete(u.previous, name)
		return
	}
	u.previous[name] = image
}

// previousImage returns the image name ran before its last replacement.
func (u *Updater) previousImage(name string) string {
	u.prevMu.Lock()
	defer u.prevMu.Unlock()
	return u.previous[name]
}

// peekRecovered returns the replacement recovery finished for name, when
// there is one, and keeps it.
func (u *Updater) peekRecovered(name string) (recoveredReplacement, bool) {
	u.prevMu.Lock()
	defer u.prevMu.Unlock()
	r, ok := u.recovered[name]
	return r, ok
}

// takeRecovered returns and forgets the replacement recovery finished for
// name, when there is one.
func (u *Updater) takeRecovered(name string) (recoveredReplacement, bool) {
	u.prevMu.Lock()
	defer u.prevMu.Unlock()
	r, ok := u.recovered[name]
	delete(u.recovered, name)
	return r, ok
}

// seedPrevious reads the previous images of the last inventory this node
// published, so a restart keeps them. A missing or unreadable entry only
// loses that hint.
func (u *Updater) seedPrevious(ctx context.Context) {
	entry, err := u.nodes.Get(ctx, u.cfg.Node)
	if err != nil {
		if !events.IsNotFound(err) {
			u.log.Warn("read previous inventory", "err", err)
		}
		return
	}
	var inv events.NodeInventory
	if err := json.Unmarshal(entry.Value(), &inv); err != nil {
		u.log.Warn("decode previous inventory", "err", err)
		return
	}
	u.prevMu.Lock()
	defer u.prevMu.Unlock()
	for _, c := range inv.Containers {
		if c.PreviousImage != "" {
			u.previous[c.Name] = c.PreviousImage
		}
	}
}

// publishInventory puts the node's inventory under its key in the nodes
// bucket, which also renews the key's TTL.
func (u *Updater) publishInventory(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, publishTimeout)
	defer cancel()
	inv, err := u.Inventory(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("encode inventory: %w", err)
	}
	if _, err := u.nodes.Put(ctx, u.cfg.Node, b); err != nil {
		return fmt.Errorf("put inventory of node %s in %s: %w", u.cfg.Node, events.BucketNodes, err)
	}
	u.log.Debug("inventory published", "containers", len(inv.Containers))
	return nil
}

func (u *Updater) heartbeat(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, publishTimeout)
	defer cancel()
	list, err := u.rt.List(ctx, u.cfg.Node)
	if err != nil {
		return fmt.Errorf("list containers of node %s: %w", u.cfg.Node, err)
	}
	n := 0
	for _, c := range list {
		_, old := isOldName(c.Name)
		_, trial := isNewName(c.Name)
		if !old && !trial {
			n++
		}
	}
	e, err := events.New(events.Source(serviceName, u.cfg.Node), events.NodeHeartbeat{
		AgentVersion: u.cfg.AgentVersion,
		Runtime:      u.rt.Name(),
		Containers:   n,
	}, events.WithNode(u.cfg.Node))
	if err != nil {
		return err
	}
	return u.pub.Publish(ctx, e)
}

// withDefaultTimeout applies d when ctx has no deadline, so no call can hang.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
