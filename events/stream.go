package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the stream and KV buckets the services share.
const (
	StreamName      = "CUTOVER"
	BucketNodes     = "cutover-nodes"
	BucketUpgrades  = "cutover-upgrades"
	BucketLocks     = "cutover-locks"
	BucketProcessed = "cutover-processed"
)

// Defaults of the stream's limits, sized for a fleet of 5,000 nodes; the
// arithmetic is in docs/architecture.md ("Retention").
const (
	// DefaultMaxAge is how long an event stays in the stream.
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultMaxBytes bounds the stream's size (per replica): about 25
	// full upgrades of 5,000 nodes x 20 containers, beside an hour of
	// their heartbeats (HeartbeatTTL). When full the oldest events go first.
	DefaultMaxBytes = 10 << 30
	// DefaultMaxMsgsPerSubject bounds each subject, so a flood on one
	// (a monitor's health signals for one service on one node, one node's
	// heartbeats) replaces its own old messages, not other subjects'.
	DefaultMaxMsgsPerSubject = 100_000
	// DefaultDuplicates is the deduplication window of Nats-Msg-Id.
	DefaultDuplicates = 10 * time.Minute
	// DefaultMaxConsumers bounds the stream's consumers. Every node-updater
	// has its own durable consumer and nats-server's default when a stream
	// sets none is 1,000: a fleet of a thousand nodes would hit it.
	DefaultMaxConsumers = 1 << 20
)

// SetupConfig says how to create the stream and buckets. Their limits
// apply when Setup creates them; an existing stream or bucket keeps what it
// has (an operator's `nats stream edit` stays), Setup only adds what is
// missing: a bucket, per-message TTLs, and, with RaiseReplicas, replicas.
type SetupConfig struct {
	// Replicas is the number of JetStream replicas of the stream and buckets
	// (default 1 for a single server; 3 or 5 in a cluster).
	Replicas int
	// RaiseReplicas raises an existing stream or bucket with fewer replicas
	// to Replicas. Without it Setup only logs the difference. Setup never
	// lowers replicas.
	RaiseReplicas bool
	// MaxAge bounds how long events stay in the stream (default 30 days).
	MaxAge time.Duration
	// MaxBytes bounds the stream's size in bytes; the oldest events are
	// dropped first (default DefaultMaxBytes).
	MaxBytes int64
	// MaxMsgsPerSubject bounds the messages kept per subject (default
	// DefaultMaxMsgsPerSubject).
	MaxMsgsPerSubject int64
	// MaxMsgSize is the largest message the stream stores (default MaxEventSize).
	MaxMsgSize int32
	// Duplicates is the deduplication window for Nats-Msg-Id (default 10 minutes).
	Duplicates time.Duration
	// NodeTTL is how long a node's inventory entry lives without a refresh; a
	// node-updater silent for longer is considered lost (default 30s).
	NodeTTL time.Duration
	// ProcessedTTL is how long a consumer remembers a handled event id (default 24h).
	ProcessedTTL time.Duration
	// MaxConsumers bounds the stream's consumers (default DefaultMaxConsumers).
	MaxConsumers int
	// Logger receives what Setup created, raised, and where an existing
	// stream differs from these settings (default slog.Default()).
	Logger *slog.Logger
}

func (c *SetupConfig) setDefaults() {
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.MaxAge = cmp.Or(c.MaxAge, DefaultMaxAge)
	c.MaxBytes = cmp.Or(c.MaxBytes, DefaultMaxBytes)
	c.MaxMsgsPerSubject = cmp.Or(c.MaxMsgsPerSubject, DefaultMaxMsgsPerSubject)
	c.MaxMsgSize = cmp.Or(c.MaxMsgSize, MaxEventSize)
	c.Duplicates = cmp.Or(c.Duplicates, DefaultDuplicates)
	c.NodeTTL = cmp.Or(c.NodeTTL, 30*time.Second)
	c.ProcessedTTL = cmp.Or(c.ProcessedTTL, 24*time.Hour)
	c.MaxConsumers = cmp.Or(c.MaxConsumers, DefaultMaxConsumers)
	c.Logger = cmp.Or(c.Logger, slog.Default())
}

// Validate reports every field out of range at once.
func (c SetupConfig) Validate() error {
	var errs []error
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream replicas %d: want 1 to 5 (JetStream's limit; 1 for one server, 3 in a cluster)", c.Replicas))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("stream max age %v: want a positive duration, e.g. 720h", c.MaxAge))
	}
	if c.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("stream max bytes %d: want a positive size", c.MaxBytes))
	}
	if c.MaxMsgsPerSubject < 0 {
		errs = append(errs, fmt.Errorf("stream max messages per subject %d: want a positive count", c.MaxMsgsPerSubject))
	}
	if c.MaxMsgSize < 0 || c.MaxMsgSize > 0 && c.MaxMsgSize < 64<<10 {
		errs = append(errs, fmt.Errorf("stream max message size %d: want at least 65536 bytes (cutover's events reach %d)", c.MaxMsgSize, MaxEventSize))
	}
	return errors.Join(errs...)
}

// StreamConfig is the CUTOVER stream Setup creates with c's settings
// (defaults filled).
func (c SetupConfig) StreamConfig() jetstream.StreamConfig {
	c.setDefaults()
	return jetstream.StreamConfig{
		Name:              StreamName,
		Description:       "cutover events (CloudEvents 1.0, structured JSON)",
		Subjects:          []string{SubjectAll},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxBytes:          c.MaxBytes,
		MaxMsgs:           -1,
		MaxMsgsPerSubject: c.MaxMsgsPerSubject,
		MaxMsgSize:        c.MaxMsgSize,
		Duplicates:        c.Duplicates,
		Replicas:          c.Replicas,
		MaxConsumers:      c.MaxConsumers,
		// Heartbeats carry a Nats-TTL (Spec.TTL) so that liveness chatter
		// leaves the stream within an hour while upgrade events stay for
		// MaxAge; monitors may set one on health signals.
		AllowMsgTTL: true,
	}
}

// LeaderReads reports whether Setup turns direct gets off for a bucket, so
// that every read of it is answered by the bucket's leader and sees every
// write acknowledged before it. With direct gets (nats.go's default for a
// bucket) any replica answers a read, and a follower that has not applied
// the last write yet answers with the value before it: on a cluster the
// planner, which reads an upgrade's record and then saves it with
// compare-and-swap on the revision it read, failed such saves with "wrong
// last sequence" and retried them with a growing backoff for as long as the
// follower lagged. Only cutover-upgrades needs it: its reads are few (one
// per handled event) and always followed by a compare-and-swap; the other
// buckets are read far more often (cutover-processed, cutover-nodes) or
// tolerate a stale read with a retry (cutover-locks).
func LeaderReads(bucket string) bool { return bucket == BucketUpgrades }

func (c SetupConfig) buckets() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: BucketNodes, Description: "each node-updater's observed containers; an entry expires when its node goes silent", TTL: c.NodeTTL, History: 1},
		{Bucket: BucketUpgrades, Description: "the planner's state of each upgrade, updated with compare-and-swap", History: 5},
		{Bucket: BucketLocks, Description: "one active upgrade per scope", History: 1},
		{Bucket: BucketProcessed, Description: "event ids each consumer has handled, so a redelivery changes nothing twice", TTL: c.ProcessedTTL, History: 1},
	}
}

// Setup makes sure the CUTOVER stream and the KV buckets exist. Every
// service calls it at start-up, so it never shrinks or resets anything:
// what is missing is created with cfg's settings; what exists keeps its
// limits and replicas, and Setup logs once where they differ from cfg. It
// only adds: per-message TTLs on a stream created before them, and, with
// cfg.RaiseReplicas, replicas up to cfg.Replicas (never down).
func Setup(ctx context.Context, js jetstream.JetStream, cfg SetupConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.setDefaults()
	log := cfg.Logger
	want := cfg.StreamConfig()
	var short []string // what has fewer replicas than asked, for one log line
	cur, err := streamConfig(ctx, js, StreamName)
	if err != nil {
		return err
	}
	if cur == nil {
		_, err := js.CreateStream(ctx, want)
		switch {
		case errors.Is(err, jetstream.ErrStreamNameAlreadyInUse):
			// Another service created it a moment ago, with other settings
			// (on a cluster, perhaps not visible yet: wait for it).
			if cur = appeared(ctx, js, StreamName); cur == nil {
				return cmp.Or(ctx.Err(), fmt.Errorf("read stream %s: not there within %v of its creation", StreamName, createWait))
			}
		case err != nil:
			// An identity without create rights (a node-updater) may
			// start before the one that has them (the planner).
			if cur = createdMeanwhile(ctx, js, StreamName, err); cur == nil {
				return setupError(fmt.Sprintf("create stream %s", StreamName), cfg, err)
			}
			log.Info("stream created by another service", "stream", StreamName, "own_create", err)
		default:
			log.Info("created stream", "stream", StreamName, "replicas", want.Replicas, "max_age", want.MaxAge,
				"max_bytes", want.MaxBytes, "max_msgs_per_subject", want.MaxMsgsPerSubject, "max_msg_size", want.MaxMsgSize)
		}
	}
	if cur != nil {
		upd := *cur
		var added []any
		if !upd.AllowMsgTTL {
			upd.AllowMsgTTL = true
			added = append(added, "allow_msg_ttl", true)
		}
		if want.Replicas > upd.Replicas && cfg.RaiseReplicas {
			added = append(added, "replicas", fmt.Sprintf("%d -> %d", upd.Replicas, want.Replicas))
			upd.Replicas = want.Replicas
		} else if want.Replicas > upd.Replicas {
			short = append(short, fmt.Sprintf("stream %s: %d", StreamName, upd.Replicas))
		}
		if len(added) > 0 {
			if err := updateStream(ctx, js, upd); err != nil {
				return setupError(fmt.Sprintf("update stream %s", StreamName), cfg, err)
			}
			log.Info("added to stream", append([]any{"stream", StreamName}, added...)...)
		}
		if diff := streamDiff(upd, want); len(diff) > 0 {
			log.Info("stream keeps its own settings where they differ from this service's (change them with nats stream edit)",
				append([]any{"stream", StreamName}, diff...)...)
		}
	}
	for _, b := range cfg.buckets() {
		b.Storage = jetstream.FileStorage
		b.Replicas = cfg.Replicas
		name := "KV_" + b.Bucket
		kvCur, err := streamConfig(ctx, js, name)
		if err != nil {
			return err
		}
		if kvCur == nil {
			_, err := js.CreateKeyValue(ctx, b)
			if err != nil && !errors.Is(err, jetstream.ErrBucketExists) && createdMeanwhile(ctx, js, name, err) == nil {
				return setupError(fmt.Sprintf("create KV bucket %s", b.Bucket), cfg, err)
			}
			if !LeaderReads(b.Bucket) {
				continue
			}
			// nats.go creates every bucket with direct gets; turn them off
			// below. On a cluster a bucket another service created a moment
			// ago may not be visible yet: wait for it.
			if kvCur = appeared(ctx, js, name); kvCur == nil {
				return cmp.Or(ctx.Err(), fmt.Errorf("read KV bucket %s: not there within %v of its creation", b.Bucket, createWait))
			}
		}
		upd := *kvCur
		var added []any
		if LeaderReads(b.Bucket) && upd.AllowDirect {
			upd.AllowDirect = false
			added = append(added, "direct_get", "off (reads go to the bucket's leader)")
		}
		if b.Replicas > kvCur.Replicas && cfg.RaiseReplicas {
			// Raised through the bucket's stream, so nothing else of its
			// configuration changes.
			upd.Replicas = b.Replicas
			added = append(added, "replicas", fmt.Sprintf("%d -> %d", kvCur.Replicas, b.Replicas))
		} else if b.Replicas > kvCur.Replicas {
			short = append(short, fmt.Sprintf("bucket %s: %d", b.Bucket, kvCur.Replicas))
		}
		if len(added) == 0 {
			continue
		}
		if err := updateStream(ctx, js, upd); err != nil {
			return setupError(fmt.Sprintf("update KV bucket %s", b.Bucket), cfg, err)
		}
		log.Info("changed KV bucket", append([]any{"bucket", b.Bucket}, added...)...)
	}
	if len(short) > 0 {
		log.Warn("fewer replicas than asked; start one service with --raise-stream-replicas to raise them (they are never lowered)",
			"asked", cfg.Replicas, "have", short)
	}
	return nil
}

// setupError wraps a JetStream error of Setup with what to do about it.
// The codes are nats-server's (server/errors.json).
func setupError(what string, cfg SetupConfig, err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("%s: %w", what, err)
	}
	room := fmt.Sprintf("each of %d JetStream servers needs room for --stream-max-bytes %d (env CUTOVER_STREAM_MAX_BYTES) in its jetstream { max_file_store } and on its disk", cfg.Replicas, cfg.MaxBytes)
	fix := "give a smaller --stream-max-bytes, raise the servers' max_file_store (or free their disk), or start more servers"
	switch apiErr.ErrorCode {
	case 10074: // replicas > 1 not supported in non-clustered mode
		return fmt.Errorf("%s: %w (%d replicas need a JetStream cluster of at least %d servers; give --stream-replicas 1 for one server)", what, err, cfg.Replicas, cfg.Replicas)
	case 10023, 10047: // insufficient resources, insufficient storage resources available
		return fmt.Errorf("%s: %w (%s: %s)", what, err, room, fix)
	case 10027: // maximum number of streams reached
		return fmt.Errorf("%s: %w (cutover needs 5 streams, CUTOVER and 4 KV buckets: raise the account's jetstream max_streams)", what, err)
	case 10005: // no suitable peers for placement, with the reasons
		var hints []string
		desc := apiErr.Description
		if strings.Contains(desc, "insufficient storage") {
			hints = append(hints, room+": "+fix)
		}
		if strings.Contains(desc, "peer offline") {
			hints = append(hints, fmt.Sprintf("%d replicas need %d JetStream servers online: start the missing ones, or give a smaller --stream-replicas", cfg.Replicas, cfg.Replicas))
		}
		if strings.Contains(desc, "jetstream not enabled") {
			hints = append(hints, "enable JetStream (a jetstream { store_dir } block) on every server of the cluster")
		}
		if strings.Contains(desc, "tag") {
			hints = append(hints, "the servers' server_tags do not allow this placement: check them, or their unique_tag")
		}
		if len(hints) == 0 {
			hints = append(hints, fmt.Sprintf("%d replicas need %d JetStream servers online with room for --stream-max-bytes %d each; or give a smaller --stream-replicas", cfg.Replicas, cfg.Replicas, cfg.MaxBytes))
		}
		return fmt.Errorf("%s: %w (%s)", what, err, strings.Join(hints, "; "))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// streamDiff lists the settings where an existing stream differs from want,
// as slog key-value pairs "setting", "have X, default Y".
func streamDiff(have, want jetstream.StreamConfig) []any {
	var out []any
	add := func(name string, h, w any) {
		if h != w {
			out = append(out, name, fmt.Sprintf("have %v, default %v", h, w))
		}
	}
	add("max_age", have.MaxAge, want.MaxAge)
	add("max_bytes", have.MaxBytes, want.MaxBytes)
	add("max_msgs", have.MaxMsgs, want.MaxMsgs)
	add("max_msgs_per_subject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	add("max_msg_size", have.MaxMsgSize, want.MaxMsgSize)
	add("discard", have.Discard, want.Discard)
	add("duplicates", have.Duplicates, want.Duplicates)
	add("max_consumers", have.MaxConsumers, want.MaxConsumers)
	if have.Replicas < want.Replicas {
		add("replicas", have.Replicas, want.Replicas)
	}
	return out
}

// createWait bounds how long Setup waits for another service to create what
// its own identity could not.
var createWait = 30 * time.Second

// createdMeanwhile waits, with a capped backoff up to createWait, for a
// stream Setup failed to create (with createErr) to be created by another
// service, and returns its config, or nil when it did not appear. A create
// the server refused with a reason (an API error: too many replicas, no
// room) returns nil at once: waiting would only delay that reason. A create
// this identity may not make gets no answer at all.
func createdMeanwhile(ctx context.Context, js jetstream.JetStream, name string, createErr error) *jetstream.StreamConfig {
	if _, ok := errors.AsType[*jetstream.APIError](createErr); ok {
		return nil
	}
	return appeared(ctx, js, name)
}

// appeared polls, with a capped backoff up to createWait, for a stream to
// exist, and returns its config, or nil when it did not appear.
func appeared(ctx context.Context, js jetstream.JetStream, name string) *jetstream.StreamConfig {
	deadline := time.Now().Add(createWait)
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		if cur, err := streamConfig(ctx, js, name); err == nil && cur != nil {
			return cur
		}
		if time.Now().Add(pause).After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
	}
}

// streamConfig returns a stream's config, or nil when it does not exist.
func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	var st jetstream.Stream
	err := untilAnswered(ctx, func() (err error) {
		st, err = js.Stream(ctx, name)
		return err
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	return &cfg, nil
}

// updateStream is js.UpdateStream, repeated until answered (untilAnswered):
// an update only sets what Setup wants, so repeating it is harmless.
func updateStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	return untilAnswered(ctx, func() error {
		_, err := js.UpdateStream(ctx, cfg)
		return err
	})
}

// untilAnswered runs call again, with a capped backoff up to createWait,
// while the server gives no answer in time or says JetStream is briefly
// unavailable. On a fresh cluster, a stream or bucket another service has
// just created has no leader for a moment (a few seconds on a loaded
// machine), and a request about it goes unanswered until one is elected:
// two planners started together saw "read stream KV_cutover-locks: context
// deadline exceeded" and one exited. Only reads and updates go through
// here: a create that gets no answer may be one this identity is not
// allowed to make, which createdMeanwhile waits out.
func untilAnswered(ctx context.Context, call func() error) error {
	deadline := time.Now().Add(createWait)
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		err := call()
		if err == nil || !unanswered(ctx, err) || time.Now().Add(pause).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// unanswered reports whether err is a request of Setup that timed out on its
// own (the caller's ctx is still live) or that JetStream briefly refused.
func unanswered(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok {
		return apiErr.ErrorCode == 10008 // JetStream system temporarily unavailable
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}
