package verdict

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// The Watcher reads the whole stream (cutover.>) and ignores the types the
// Judge does not need: a consumer with several filter subjects costs the
// server a subject-tree intersection per message, which a flood of signals
// from many distinct subjects turns into a bottleneck (about 1,000 messages
// per second measured on 2 cores, against tens of thousands unfiltered).

// WatcherConfig configures a Watcher. Zero fields take the defaults noted.
type WatcherConfig struct {
	// Judge configures the policies and windows.
	Judge Config
	// Logger receives lifecycle logs at Info and verdicts at Info
	// (default slog.Default()).
	Logger *slog.Logger
	// TickEvery is how often windows are checked for their end (default 100ms).
	TickEvery time.Duration
	// Lookback is how far in the past reading starts, so a restarted auditor
	// rebuilds the windows still open (default the longest window plus a
	// minute, at most 9 minutes: inside JetStream's deduplication window, so
	// repeated decisions are dropped).
	Lookback time.Duration
	// MaxOutbox bounds the events waiting to be published again after a
	// publish failure (default 256); beyond it the oldest are dropped and logged.
	MaxOutbox int
	// OnPublished, when set, is called with each event the Watcher published
	// (metrics, tests). It must not block.
	OnPublished func(events.Event)
}

func (c *WatcherConfig) setDefaults() {
	c.Judge.setDefaults()
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.TickEvery = cmp.Or(c.TickEvery, 100*time.Millisecond)
	c.Lookback = cmp.Or(c.Lookback, min(max(c.Judge.Watch, c.Judge.PostWatch)+time.Minute, 9*time.Minute))
	c.MaxOutbox = cmp.Or(c.MaxOutbox, 256)
}

// Watcher runs a Judge over the CUTOVER stream and publishes its verdicts
// and rollback requests.
type Watcher struct {
	cfg WatcherConfig
	js  jetstream.JetStream
	pub *events.Publisher
	log *slog.Logger

	mu     sync.Mutex // guards judge, lag and outbox against Stats
	judge  *Judge
	lag    uint64
	outbox []events.Event

	cancel context.CancelFunc
	it     jetstream.MessagesContext
	wg     sync.WaitGroup
}

// NewWatcher returns a Watcher on js, or every problem with cfg.
func NewWatcher(cfg WatcherConfig, js jetstream.JetStream) (*Watcher, error) {
	cfg.setDefaults()
	if js == nil {
		return nil, errors.New("new health watcher: JetStream is nil; connect to NATS first")
	}
	j, err := NewJudge(cfg.Judge)
	if err != nil {
		return nil, err
	}
	return &Watcher{cfg: cfg, js: js, pub: events.NewPublisher(js), log: cfg.Logger.With("component", "verdicts"), judge: j}, nil
}

// WatcherStats is what a Watcher did: its Judge's counters and how far
// behind the stream it reads.
type WatcherStats struct {
	Stats
	// Lag is the number of stream messages left to read after the last one
	// read (the consumer lag).
	Lag uint64 `json:"lag"`
	// Outbox counts events waiting to be published again.
	Outbox int `json:"outbox"`
}

// Stats returns the current counters.
func (w *Watcher) Stats() WatcherStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WatcherStats{Stats: w.judge.Stats(), Lag: w.lag, Outbox: len(w.outbox)}
}

// Start begins reading and judging until Close.
func (w *Watcher) Start(ctx context.Context) error {
	if w.it != nil {
		return errors.New("start health watcher: already started")
	}
	since := time.Now().Add(-w.cfg.Lookback)
	cons, err := w.js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectAll},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return fmt.Errorf("start health watcher: create ordered consumer on %s: %w", events.StreamName, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("start health watcher: read %s: %w", events.StreamName, err)
	}
	w.it = it
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	msgs := make(chan jetstream.Msg)
	w.wg.Add(2)
	go w.read(rctx, msgs)
	go w.run(rctx, msgs)
	w.log.Info("health watcher started", "watch", w.cfg.Judge.Watch, "post_watch", w.cfg.Judge.PostWatch, "lookback", w.cfg.Lookback)
	return nil
}

// Close stops reading and waits for the goroutines. Windows still open are
// abandoned; a Watcher started again rebuilds them from the stream.
func (w *Watcher) Close(ctx context.Context) error {
	if w.it == nil {
		return nil
	}
	w.it.Stop()
	w.cancel()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close health watcher: %w", ctx.Err())
	}
	w.log.Info("health watcher stopped")
	return nil
}

// read hands messages to run; it ends when the iterator stops.
func (w *Watcher) read(ctx context.Context, out chan<- jetstream.Msg) {
	defer w.wg.Done()
	for {
		msg, err := w.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			w.log.Warn("read stream", "err", err)
			continue
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			return
		}
	}
}

// run owns the Judge: it feeds it messages and ticks, and publishes.
func (w *Watcher) run(ctx context.Context, msgs <-chan jetstream.Msg) {
	defer w.wg.Done()
	t := time.NewTicker(w.cfg.TickEvery)
	defer t.Stop()
	quiet := 0 // ticks without a message
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-msgs:
			quiet = 0
			w.observe(ctx, msg)
		case now := <-t.C:
			quiet++
			w.mu.Lock()
			// Windows close only when the stream is read up to now (or
			// nothing came for a while): while catching up after a restart,
			// signals stored before a window's end are still to come.
			var out []events.Event
			if w.lag == 0 || quiet > 2 {
				out = w.judge.Tick(now)
			}
			w.mu.Unlock()
			w.publish(ctx, out)
		}
	}
}

func (w *Watcher) observe(ctx context.Context, msg jetstream.Msg) {
	at := time.Now()
	var lag uint64
	if meta, err := msg.Metadata(); err == nil {
		at, lag = meta.Timestamp, meta.NumPending
	}
	e, err := events.DecodeMsg(msg.Subject(), msg.Headers(), msg.Data())
	w.mu.Lock()
	w.lag = lag
	var out []events.Event
	if err != nil {
		// The durable consumers (the auditor's store among them) reject it
		// with dev.cutover.event.rejected; here it is counted and dropped.
		w.judge.Garbage()
	} else {
		out = w.judge.Observe(at, e)
	}
	w.mu.Unlock()
	w.publish(ctx, out)
}

// publish publishes the events, with those a failure left behind first.
func (w *Watcher) publish(ctx context.Context, out []events.Event) {
	w.mu.Lock()
	pending := append(w.outbox, out...)
	w.outbox = nil
	w.mu.Unlock()
	for i, e := range pending {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := w.pub.Publish(pctx, e)
		cancel()
		if err != nil {
			w.log.Warn("publish decision; will retry", "type", e.Type(), "id", e.ID(), "err", err)
			w.keep(pending[i:])
			return
		}
		w.logDecision(e)
		if w.cfg.OnPublished != nil {
			w.cfg.OnPublished(e)
		}
	}
}

func (w *Watcher) keep(rest []events.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if over := len(rest) - w.cfg.MaxOutbox; over > 0 {
		w.log.Error("outbox full: dropping decisions that could not be published", "dropped", over)
		rest = rest[over:]
	}
	w.outbox = rest
}

func (w *Watcher) logDecision(e events.Event) {
	switch e.Type() {
	case events.TypeHealthVerdict:
		d, _ := events.DataAs[events.HealthVerdict](e)
		w.log.Info("health verdict", "upgrade", events.UpgradeID(e), "service", d.Service, "wave", d.Wave, "verdict", d.Verdict, "evidence", d.Evidence)
	case events.TypeRollbackRequested:
		d, _ := events.DataAs[events.RollbackRequested](e)
		w.log.Warn("rollback requested", "upgrade", events.UpgradeID(e), "reason", d.Reason)
	}
}
