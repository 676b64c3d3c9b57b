package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
)

// ContentType is the Content-Type of every POST: structured-mode CloudEvents.
const ContentType = "application/cloudevents+json"

// Defaults of Config.
const (
	DefaultQueueSize      = 1024
	DefaultTimeout        = 10 * time.Second
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultGiveUpAfter    = 5 * time.Minute
)

// DefaultTypes are the events notified when no types are chosen: upgrades
// that end or stop, rollbacks, and failing verdicts.
var DefaultTypes = []string{
	events.TypeUpgradeFailed, events.TypeUpgradePaused, events.TypeUpgradeAborted, events.TypeUpgradeCompleted,
	events.TypeRollbackRequested, events.TypeRollbackCompleted,
	events.TypeHealthVerdict + ":failing",
}

// Filter chooses the records to notify.
type Filter func(auditor.Record) bool

// ParseTypes returns the filter of a list of event types. An entry is an
// event type of the catalog (docs/events.md), or TYPE:VERDICT for
// dev.cutover.health.verdict to notify only verdicts of that value
// (healthy, failing or inconclusive). An empty list gives DefaultTypes.
func ParseTypes(list []string) (Filter, error) {
	if len(list) == 0 {
		list = DefaultTypes
	}
	all := map[string]bool{}      // type -> every event of it
	verdicts := map[string]bool{} // verdict values of health.verdict
	var errs []error
	for _, entry := range list {
		entry = strings.TrimSpace(entry)
		typ, verdict, hasVerdict := strings.Cut(entry, ":")
		if _, ok := events.Lookup(typ); !ok {
			errs = append(errs, fmt.Errorf("webhook type %q: not an event type of the catalog (see docs/events.md)", entry))
			continue
		}
		if !hasVerdict {
			all[typ] = true
			continue
		}
		switch {
		case typ != events.TypeHealthVerdict:
			errs = append(errs, fmt.Errorf("webhook type %q: only %s takes a :VERDICT suffix", entry, events.TypeHealthVerdict))
		case verdict != "healthy" && verdict != "failing" && verdict != "inconclusive":
			errs = append(errs, fmt.Errorf("webhook type %q: verdict must be healthy, failing or inconclusive", entry))
		default:
			verdicts[verdict] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func(r auditor.Record) bool {
		if all[r.Type] {
			return true
		}
		if r.Type != events.TypeHealthVerdict || len(verdicts) == 0 {
			return false
		}
		var e struct {
			Data events.HealthVerdict `json:"data"`
		}
		return json.Unmarshal(r.Event, &e) == nil && verdicts[e.Data.Verdict]
	}, nil
}

// Config configures a Notifier.
type Config struct {
	// URLs are the webhooks (http or https); at least one.
	URLs []string
	// Filter chooses the events to post (default ParseTypes(DefaultTypes)).
	Filter Filter
	// QueueSize bounds the events waiting per URL (default DefaultQueueSize).
	QueueSize int
	// Timeout bounds each POST (default DefaultTimeout).
	Timeout time.Duration
	// InitialBackoff is the wait after the first failure; it doubles up to
	// MaxBackoff (defaults DefaultInitialBackoff, DefaultMaxBackoff).
	InitialBackoff, MaxBackoff time.Duration
	// GiveUpAfter bounds the time spent on one event, retries included
	// (default DefaultGiveUpAfter).
	GiveUpAfter time.Duration
	// Client sends the requests (default a new http.Client; Timeout applies
	// through each request's context either way).
	Client *http.Client
	// Logger receives lifecycle logs at Info, failures at Warn and each
	// delivery at Debug (default slog.Default()).
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Filter == nil {
		c.Filter, _ = ParseTypes(nil)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = DefaultGiveUpAfter
	}
	if c.Client == nil {
		c.Client = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate returns every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("webhook notifier: no URL; pass at least one --webhook URL"))
	}
	seen := map[string]bool{}
	for i, raw := range c.URLs {
		u, err := neturl.Parse(raw)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("webhook URL %d (%s): not a URL", i+1, shownURL(raw)))
		case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("webhook URL %d (%s): want an absolute http:// or https:// URL", i+1, shownURL(raw)))
		case seen[raw]:
			errs = append(errs, fmt.Errorf("webhook URL %d (%s): given twice; each URL gets every chosen event once", i+1, shownURL(raw)))
		}
		seen[raw] = true
	}
	if c.MaxBackoff < c.InitialBackoff {
		errs = append(errs, fmt.Errorf("webhook notifier: max backoff %v is below the initial backoff %v", c.MaxBackoff, c.InitialBackoff))
	}
	return errors.Join(errs...)
}

// Stats counts what a Notifier did, all URLs together.
type Stats struct {
	// Delivered counts events a webhook accepted (2xx).
	Delivered uint64 `json:"delivered"`
	// Retries counts POSTs made again after a failure.
	Retries uint64 `json:"retries"`
	// GaveUp counts events abandoned after GiveUpAfter, or at Close.
	GaveUp uint64 `json:"gave_up"`
	// Rejected counts events a webhook refused with a 4xx other than 408 and 429.
	Rejected uint64 `json:"rejected"`
	// Dropped counts events pushed out of a full queue, or arriving after Close.
	Dropped uint64 `json:"dropped"`
	// Queued is the number of events waiting now.
	Queued int `json:"queued"`
}

// Notifier posts chosen events to webhooks. Observe is safe for concurrent
// use and never blocks on the network.
type Notifier struct {
	cfg     Config
	log     *slog.Logger
	targets []*target

	delivered, retries, gaveUp, rejected, dropped atomic.Uint64

	mu      sync.Mutex
	state   int // 0 new, 1 open, 2 closed
	closing chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var _ auditor.Observer = (*Notifier)(nil)

// New returns a Notifier, or every problem with cfg. It posts nothing
// until Open.
func New(cfg Config) (*Notifier, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger.With("component", "webhooks"), closing: make(chan struct{})}
	for _, u := range cfg.URLs {
		n.targets = append(n.targets, &target{url: u, ring: make([]auditor.Record, cfg.QueueSize), wake: make(chan struct{}, 1)})
	}
	return n, nil
}

// Open starts one worker per URL. Events observed before Open wait in the
// queues.
func (n *Notifier) Open() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != 0 {
		return errors.New("open webhook notifier: already opened")
	}
	n.state = 1
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	for _, t := range n.targets {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, t)
		}()
	}
	n.log.Info("webhook notifier started", "urls", len(n.targets))
	return nil
}

// Close stops taking events and lets the workers empty their queues until
// ctx is done; then it abandons what is left (counted in GaveUp) and waits
// for the workers.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.state != 1 {
		n.state = 2
		n.mu.Unlock()
		return nil
	}
	n.state = 2
	close(n.closing)
	n.mu.Unlock()

	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
		err = fmt.Errorf("close webhook notifier: %d events not delivered: %w", n.Stats().Queued, context.Cause(ctx))
	}
	n.cancel()
	for _, t := range n.targets {
		n.gaveUp.Add(uint64(t.drop()))
	}
	n.log.Info("webhook notifier stopped")
	return err
}

// Stats returns the current counters.
func (n *Notifier) Stats() Stats {
	s := Stats{Delivered: n.delivered.Load(), Retries: n.retries.Load(), GaveUp: n.gaveUp.Load(),
		Rejected: n.rejected.Load(), Dropped: n.dropped.Load()}
	for _, t := range n.targets {
		s.Queued += t.len()
	}
	return s
}

// Observe enqueues r for every URL when the filter chooses it.
func (n *Notifier) Observe(r auditor.Record) {
	if !n.cfg.Filter(r) {
		return
	}
	n.mu.Lock()
	closed := n.state == 2
	n.mu.Unlock()
	if closed {
		n.dropped.Add(uint64(len(n.targets)))
		return
	}
	for _, t := range n.targets {
		if t.push(r) {
			// Log the first drop and then one in 1000, not a line per
			// event during a flood.
			if d := n.dropped.Add(1); d == 1 || d%1000 == 0 {
				n.log.Warn("webhook queue full; dropping the oldest events (is the endpoint down?)", "url", shownURL(t.url), "queue", n.cfg.QueueSize, "dropped", d)
			}
		}
	}
}

// run delivers t's events one at a time, in order, until the queue is empty
// after Close, or ctx is cancelled.
func (n *Notifier) run(ctx context.Context, t *target) {
	for {
		r, ok := t.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
				continue
			case <-n.closing:
				if t.len() == 0 {
					return
				}
				continue
			}
		}
		n.deliver(ctx, t.url, r)
	}
}

// deliver posts r to url until it is accepted, refused, GiveUpAfter has
// passed, or ctx is cancelled.
func (n *Notifier) deliver(ctx context.Context, url string, r auditor.Record) {
	log := n.log.With("url", shownURL(url), "event", r.ID, "type", r.Type)
	start := time.Now()
	backoff := n.cfg.InitialBackoff
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, url, r.Event)
		if err == nil {
			n.delivered.Add(1)
			log.Debug("webhook delivered", "attempts", attempt)
			return
		}
		if !retry {
			n.rejected.Add(1)
			log.Warn("webhook refused the event; not retrying (fix the endpoint or drop it from --webhook)", "err", err)
			return
		}
		if ctx.Err() != nil || time.Since(start)+backoff > n.cfg.GiveUpAfter {
			n.gaveUp.Add(1)
			log.Warn("gave up on webhook delivery", "attempts", attempt, "after", time.Since(start).Round(time.Millisecond), "err", err)
			return
		}
		log.Debug("webhook delivery failed; retrying", "attempt", attempt, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			n.gaveUp.Add(1)
			return
		case <-t.C:
		}
		n.retries.Add(1)
		backoff = min(2*backoff, n.cfg.MaxBackoff)
	}
}

// post sends one request and says whether a failure is worth retrying.
func (n *Notifier) post(ctx context.Context, url string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	shown := shownURL(url)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build webhook request for %s: %w", shown, err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "cutover-auditor")
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, secret path included.
		var uerr *neturl.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return true, fmt.Errorf("post event to %s: %w", shown, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return true, fmt.Errorf("post event to %s: %s", shown, resp.Status)
	default:
		return false, fmt.Errorf("post event to %s: %s", shown, resp.Status)
	}
}

// target is one URL's queue: a ring that drops its oldest record when full.
type target struct {
	url  string
	wake chan struct{} // a push happened; capacity 1, coalescing

	mu         sync.Mutex
	ring       []auditor.Record
	head, size int
}

// push appends r and reports whether the oldest record was dropped for it.
func (t *target) push(r auditor.Record) (dropped bool) {
	t.mu.Lock()
	if t.size == len(t.ring) {
		t.ring[t.head] = auditor.Record{}
		t.head = (t.head + 1) % len(t.ring)
		t.size--
		dropped = true
	}
	t.ring[(t.head+t.size)%len(t.ring)] = r
	t.size++
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return dropped
}

func (t *target) pop() (auditor.Record, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.size == 0 {
		return auditor.Record{}, false
	}
	r := t.ring[t.head]
	t.ring[t.head] = auditor.Record{}
	t.head = (t.head + 1) % len(t.ring)
	t.size--
	return r, true
}

func (t *target) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.size
}

// drop empties the queue and returns how many records it held.
func (t *target) drop() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.size
	clear(t.ring)
	t.head, t.size = 0, 0
	return n
}

// shownURL is a webhook URL as logs and errors show it: scheme and host
// only, since chat and incident webhooks carry their secret in the path or
// query (hooks.slack.com/services/T/B/SECRET) and some in the userinfo.
func shownURL(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook URL)"
	}
	shown := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		shown += "/…"
	}
	return shown
}
