package events

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler handles one decoded event. Returning nil acks the message; a
// *FieldError or an error wrapped with Permanent terminates it and publishes
// a rejection; any other error is transient and the message is redelivered
// after a capped backoff.
type Handler func(ctx context.Context, e Event) error

// PermanentError marks a handler error that no redelivery can fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the consume helper terminates the message instead of
// redelivering it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// ConsumerConfig configures a durable consumer run by Consume.
type ConsumerConfig struct {
	// Durable is the consumer name; it survives restarts.
	Durable string
	// FilterSubjects are the subjects the consumer reads.
	FilterSubjects []string
	// Service names the consuming service in rejection events' source.
	Service string
	// MaxDeliver bounds deliveries of one message (default 8); the last failed
	// delivery is terminated and rejected.
	MaxDeliver int
	// AckWait is how long the server waits for an ack before redelivering
	// (default 30s). InProgress is sent every AckWait/3 while a handler runs.
	AckWait time.Duration
	// BackoffBase and BackoffMax bound NakWithDelay: base·2^(delivery-1), capped (defaults 250ms, 30s).
	BackoffBase, BackoffMax time.Duration
	// Processed, when set, records each handled event id so a redelivered or
	// republished event is acked without running the handler again.
	Processed jetstream.KeyValue
	// Types, when set, are the event types the handler acts on. Others that
	// arrive on the filter subjects are acked as soon as their type is read,
	// without decoding the rest, the handler or the handled-id memory: a
	// consumer that needs a few types from a busy stream (the planner) pays
	// neither a full decode nor a KV round trip for each of the others.
	// Their validation is left to the consumers that take them (the auditor
	// takes every type); a message whose type cannot be read is decoded and
	// rejected as usual.
	Types []string
	// StartTime, when set, is where a newly created durable starts: at the
	// first message stored at or after it, instead of the stream's first
	// message. A durable that already exists keeps its deliver policy (the
	// server refuses to change it) and resumes where it stopped. For a
	// consumer whose events are only worth acting on while fresh (the
	// lb-agent's drain requests), so a first start does not replay history.
	StartTime time.Time
	// Logger receives lifecycle logs at Info and per-message logs at Debug.
	Logger *slog.Logger
}

func (c *ConsumerConfig) setDefaults() {
	c.MaxDeliver = cmp.Or(c.MaxDeliver, 8)
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.BackoffBase = cmp.Or(c.BackoffBase, 250*time.Millisecond)
	c.BackoffMax = cmp.Or(c.BackoffMax, 30*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.Service = cmp.Or(c.Service, c.Durable)
}

// Validate returns every problem with the config at once.
func (c *ConsumerConfig) Validate() error {
	var errs []error
	if err := validToken(c.Durable); err != nil {
		errs = append(errs, fmt.Errorf("consumer durable name %w", err))
	}
	if len(c.FilterSubjects) == 0 {
		errs = append(errs, errors.New("consumer filter subjects: name at least one"))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, fmt.Errorf("consumer max deliver %d: must be at least 1", c.MaxDeliver))
	}
	return errors.Join(errs...)
}

// Consumer is a running durable consumer. Close stops it.
type Consumer struct {
	cfg     ConsumerConfig
	types   map[string]bool // nil: every type
	pub     *Publisher
	it      jetstream.MessagesContext
	handler Handler
	// rejected remembers which stream sequences some consumer has already
	// rejected (keys rejected.<stream>.<seq> in the processed-id bucket),
	// so a bad message read by several consumers is reported once even
	// after the stream's deduplication window; nil when the bucket is missing.
	rejected jetstream.KeyValue
	log      *slog.Logger

	cancel context.CancelFunc // cancels the handler context
	done   chan struct{}
}

// pullHeartbeat is how often the server tells a waiting pull request that
// it is still there. A client that hears nothing for two of them pulls
// again: in a cluster a pull can be lost (its consumer's leader died with
// it, or the pull reached a server before that server learnt where a new
// consumer's leader is, and was answered "no responders"), and this bounds
// the wait to 10 s instead of the library's 30 s. At 5,000 idle consumers
// it costs the servers ≈ 1,000 empty status messages a second.
const pullHeartbeat = 5 * time.Second

// Consume creates or updates the durable consumer and runs h for each message,
// one at a time, in stream order, until Close.
func Consume(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, h Handler) (*Consumer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: 256,
	}
	// One subject goes in FilterSubject: the client then asks for the
	// consumer on $JS.API.CONSUMER.CREATE.<stream>.<durable>.<subject>, so
	// a server authorization can pin each identity's consumer to its own
	// subject (a node-updater may not read another node's commands).
	if len(cfg.FilterSubjects) == 1 {
		ccfg.FilterSubject = cfg.FilterSubjects[0]
	} else {
		ccfg.FilterSubjects = cfg.FilterSubjects
	}
	if !cfg.StartTime.IsZero() {
		if err := startPosition(ctx, js, cfg, &ccfg); err != nil {
			return nil, err
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, StreamName, ccfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(64), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return nil, fmt.Errorf("start consumer %s: %w", cfg.Durable, err)
	}
	rejected := cfg.Processed
	if rejected == nil {
		if kv, err := js.KeyValue(ctx, BucketProcessed); err == nil {
			rejected = kv
		} else {
			cfg.Logger.Warn("no processed-id bucket; a bad message is reported by each consumer that reads it (within the stream's dedup window, once)", "bucket", BucketProcessed, "err", err)
		}
	}
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Consumer{
		cfg: cfg, pub: NewPublisher(js), it: it, handler: h, types: typeSet(cfg.Types), rejected: rejected,
		log:    cfg.Logger.With("consumer", cfg.Durable),
		cancel: cancel, done: make(chan struct{}),
	}
	go c.run(hctx)
	c.log.Info("consumer started", "subjects", cfg.FilterSubjects)
	return c, nil
}

// startPosition sets where ccfg starts: cfg.StartTime for a durable that
// does not exist yet, the existing durable's own policy otherwise (an update
// may not change it, and a restart must resume where it stopped).
func startPosition(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig, ccfg *jetstream.ConsumerConfig) error {
	existing, err := js.Consumer(ctx, StreamName, cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		start := cfg.StartTime.UTC()
		ccfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		ccfg.OptStartTime = &start
		cfg.Logger.Info("new consumer starts at a time, not at the stream's first message", "consumer", cfg.Durable, "start", start)
	case err != nil:
		return fmt.Errorf("read consumer %s: %w", cfg.Durable, err)
	default:
		old := existing.CachedInfo().Config
		ccfg.DeliverPolicy, ccfg.OptStartTime, ccfg.OptStartSeq = old.DeliverPolicy, old.OptStartTime, old.OptStartSeq
	}
	return nil
}

// Close stops fetching, lets the handler in progress finish until ctx is done
// (then cancels it: its message is redelivered later), and waits.
func (c *Consumer) Close(ctx context.Context) error {
	c.it.Stop()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.cancel()
		<-c.done
	}
	c.cancel()
	c.log.Info("consumer stopped")
	return nil
}

func (c *Consumer) run(ctx context.Context) {
	defer close(c.done)
	for {
		msg, err := c.it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			c.log.Warn("fetch message", "err", err)
			continue
		}
		c.handle(ctx, msg)
	}
}

// handle runs the handler on one message and settles it. No panic leaves
// it: one in decoding, the handler or settling terminates the message and
// rejects it, naming the type and the panic, and the loop goes on.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		c.log.Warn("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	log := c.log.With("subject", msg.Subject(), "seq", meta.Sequence.Stream, "delivery", meta.NumDelivered)
	defer func() {
		if r := recover(); r != nil {
			_, typ := peek(msg.Headers(), msg.Data())
			log.Error("panic while handling a message", "type", Clip(typ, 256), "panic", r, "stack", string(debug.Stack()))
			c.reject(ctx, msg, meta, Event{}, Permanent(fmt.Errorf("panic while handling %s: %v", orUnknown(typ), r)), log)
		}
	}()
	c.process(ctx, msg, meta, log)
}

func orUnknown(typ string) string {
	if typ == "" {
		return "a message of unknown type"
	}
	return Clip(typ, 256)
}

// process decodes one message, runs the handler and settles the message.
func (c *Consumer) process(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, log *slog.Logger) {

	if c.types != nil {
		if typ := peekType(msg.Headers(), msg.Data()); typ != "" && !c.types[typ] {
			_ = msg.Ack()
			return
		}
	}
	e, err := DecodeMsg(msg.Subject(), msg.Headers(), msg.Data())
	if err != nil {
		c.reject(ctx, msg, meta, Event{}, err, log)
		return
	}
	log = log.With("type", e.Type(), "id", e.ID())
	if c.types != nil && !c.types[e.Type()] {
		_ = msg.Ack()
		return
	}
	key := c.cfg.Durable + "." + kvToken(e.ID())
	var sum []byte
	if c.cfg.Processed != nil {
		sum = contentHash(e)
		if entry, err := c.cfg.Processed.Get(ctx, key); err == nil {
			if prev := entry.Value(); len(prev) > 0 && !bytes.Equal(prev, sum) {
				// The same id with other content: a client reused an id
				// (copied an example). A request is refused loudly;
				// anything else is a producer's re-derived event, and the
				// first one stands.
				if s, _ := Lookup(e.Type()); s.Strict {
					c.reject(ctx, msg, meta, e, &FieldError{Field: "id", Reason: fmt.Sprintf("%q was already used by a different %s event, which %s handled; an id names one event: choose a new id and publish again", Clip(e.ID(), MaxAttributeLen), e.Type(), c.cfg.Durable)}, log)
					return
				}
				log.Warn("a handled id came again with other content; the first one stands")
			}
			log.Debug("already handled; acking redelivery")
			_ = msg.Ack()
			return
		}
	}

	err = c.runHandler(withMsgInfo(ctx, MsgInfo{Stream: meta.Stream, Sequence: meta.Sequence.Stream, Timestamp: meta.Timestamp}), msg, e)
	var fe *FieldError
	var pe *PermanentError
	switch {
	case err == nil:
		if c.cfg.Processed != nil {
			if _, perr := c.cfg.Processed.Put(ctx, key, sum); perr != nil {
				log.Warn("record handled event", "err", perr)
			}
		}
		// A plain ack: waiting for the server to confirm each one would make
		// consumption latency-bound. A lost ack means a redelivery, which the
		// processed-id memory and idempotent handlers absorb.
		if aerr := msg.Ack(); aerr != nil {
			log.Warn("ack", "err", aerr)
		}
		log.Debug("handled")
	case errors.As(err, &fe), errors.As(err, &pe):
		c.reject(ctx, msg, meta, e, err, log)
	case ctx.Err() != nil:
		// Shutting down: leave the message for redelivery after restart.
		_ = msg.Nak()
	case int(meta.NumDelivered) >= c.cfg.MaxDeliver:
		c.reject(ctx, msg, meta, e, fmt.Errorf("gave up after %d deliveries: %w", meta.NumDelivered, err), log)
	default:
		delay := backoff(c.cfg.BackoffBase, c.cfg.BackoffMax, meta.NumDelivered)
		log.Warn("handler failed; will retry", "err", err, "retry_in", delay)
		_ = msg.NakWithDelay(delay)
	}
}

// runHandler calls the handler with panic recovery, sending InProgress while
// it runs. The InProgress timer costs nothing for the usual handler that
// ends before AckWait/3: no goroutine runs until it fires.
func (c *Consumer) runHandler(ctx context.Context, msg jetstream.Msg, e Event) (err error) {
	every := c.cfg.AckWait / 3
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock()
	t = time.AfterFunc(every, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = msg.InProgress()
		t.Reset(every)
	})
	mu.Unlock()
	defer func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		if r := recover(); r != nil {
			// A panic is a bug that a redelivery would hit again: terminate.
			c.log.Error("handler panicked", "type", e.Type(), "id", e.ID(), "panic", r, "stack", string(debug.Stack()))
			err = Permanent(fmt.Errorf("panic while handling %s: %v", e.Type(), r))
		}
	}()
	return c.handler(ctx, e)
}

// reject terminates a message and publishes a dev.cutover.event.rejected
// event, once per message however many consumers reject it. JetStream's
// dedup (the id derives from the stream sequence) keeps duplicates out of
// the stream, but a core subscriber (`nats sub`, an alert) sees every
// publish: so the first consumer to reject a message claims it in the
// processed-id bucket (rejected.<stream>.<seq>, created only if absent) and
// only the claim's owner publishes; the others terminate it quietly, also
// long after the dedup window. It never panics. A rejection that cannot be
// published is retried with the message's redelivery while deliveries
// remain; then, or on any other failure, the message is still terminated,
// so a restart never reads it again.
func (c *Consumer) reject(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, e Event, cause error, log *slog.Logger) {
	term := true
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic while rejecting a message", "panic", r)
		}
		if !term {
			return
		}
		if err := msg.Term(); err != nil {
			log.Warn("terminate message", "err", err)
		}
	}()
	data := EventRejected{
		Consumer:       c.cfg.Durable,
		Subject:        Clip(msg.Subject(), 256),
		StreamSequence: meta.Sequence.Stream,
		EventID:        Clip(e.ID(), MaxAttributeLen),
		RejectedType:   Clip(e.Type(), MaxAttributeLen),
		Reason:         cause.Error(),
		Payload:        truncate(msg.Data(), 1024),
	}
	if data.EventID == "" && data.RejectedType == "" {
		id, typ := peek(msg.Headers(), msg.Data())
		data.EventID, data.RejectedType = Clip(id, MaxAttributeLen), Clip(typ, MaxAttributeLen)
	}
	var fe *FieldError
	if errors.As(cause, &fe) {
		data.Field, data.Reason = Clip(fe.Field, 256), fe.Reason
	}
	data.Reason = Clip(data.Reason, MaxEchoLen)

	if c.rejected != nil {
		key := fmt.Sprintf("rejected.%s.%d", meta.Stream, meta.Sequence.Stream)
		if _, err := c.rejected.Create(ctx, key, []byte(c.cfg.Durable)); errors.Is(err, jetstream.ErrKeyExists) {
			if entry, gerr := c.rejected.Get(ctx, key); gerr == nil && string(entry.Value()) != c.cfg.Durable {
				log.Debug("rejected by another consumer", "by", string(entry.Value()), "reason", data.Reason)
				return
			}
			// Claimed on an earlier delivery to this consumer whose
			// rejection did not go out: publish it now (same id).
		} else if err != nil {
			log.Warn("claim the rejection; reporting it anyway", "err", err)
		}
	}
	log.Warn("rejected message", "field", data.Field, "reason", data.Reason)
	id := uuid.NewSHA1(rejectionNamespace, fmt.Appendf(nil, "%s/%d", meta.Stream, meta.Sequence.Stream)).String()
	opts := []Option{WithID(id)}
	if e.ID() != "" && checkLengths(e) == nil {
		opts = append(opts, CausedBy(e))
	}
	rej, err := New(Source(c.cfg.Service, ""), data, opts...)
	if err != nil {
		log.Error("build rejection", "err", err)
		return
	}
	if err := c.pub.Publish(ctx, rej); err != nil {
		if ctx.Err() != nil {
			// Shutting down: the message and its claim wait for the restart.
			term = false
			_ = msg.Nak()
			return
		}
		if int(meta.NumDelivered) < c.cfg.MaxDeliver {
			delay := backoff(c.cfg.BackoffBase, c.cfg.BackoffMax, meta.NumDelivered)
			log.Warn("publish rejection; the message comes back to try again", "err", err, "retry_in", delay)
			term = false
			_ = msg.NakWithDelay(delay)
			return
		}
		log.Error("publish rejection; terminating the message unreported", "err", err)
	}
}

// contentHash identifies what an event says, apart from its id, time and
// source: its type, subject, upgrade and node, and its data with
// insignificant white space removed. It is kept as the value of a handled
// id, so a reused id with other content is told apart from a redelivery.
func contentHash(e Event) []byte {
	h := sha256.New()
	for _, s := range []string{e.Type(), e.Subject(), UpgradeID(e), NodeID(e)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var data bytes.Buffer
	if json.Compact(&data, e.Data()) == nil {
		h.Write(data.Bytes())
	} else {
		h.Write(e.Data())
	}
	return []byte("sha256:" + hex.EncodeToString(h.Sum(nil)))
}

// kvToken returns s when it can be part of a KV key, else a digest of it:
// an event id may hold characters (spaces, colons) a key cannot.
func kvToken(s string) string {
	ok := s != "" && s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
	for _, c := range []byte(s) {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=' || c == '/' || c == '.')
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "h-" + hex.EncodeToString(sum[:])
}

// MsgInfo is where the message a handler runs on sits in the stream.
type MsgInfo struct {
	// Stream is the stream's name.
	Stream string
	// Sequence is the message's stream sequence: the order of the history,
	// which the events' own time attribute (a client's clock) is not.
	Sequence uint64
	// Timestamp is when the stream stored the message, on the server's clock.
	Timestamp time.Time
}

type msgInfoKey struct{}

func withMsgInfo(ctx context.Context, mi MsgInfo) context.Context {
	return context.WithValue(ctx, msgInfoKey{}, mi)
}

// MsgInfoFrom returns the stream position of the message a Handler runs
// on; false outside a handler that Consume called.
func MsgInfoFrom(ctx context.Context) (MsgInfo, bool) {
	mi, ok := ctx.Value(msgInfoKey{}).(MsgInfo)
	return mi, ok
}

func typeSet(types []string) map[string]bool {
	if len(types) == 0 {
		return nil
	}
	m := make(map[string]bool, len(types))
	for _, t := range types {
		m[t] = true
	}
	return m
}

var rejectionNamespace = uuid.MustParse("6f1b7d1e-6c1f-4f4a-9a52-6375746f7665")

func backoff(base, max time.Duration, delivery uint64) time.Duration {
	d := base
	for i := uint64(1); i < delivery && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	for !utf8.Valid(b) && len(b) > 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}
