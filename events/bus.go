package events

import (
	"context"
	"errors"
	"fmt"
	"time"

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

// SetupConfig sizes the stream and buckets. A zero field keeps what an
// existing stream or bucket has (so a service started with defaults never
// shrinks what an operator sized, e.g. a 3-replica stream in a cluster) and
// takes the default when creating one.
type SetupConfig struct {
	// Replicas is the number of JetStream replicas (1 for a single server, 3 or 5 in a cluster).
	Replicas int
	// MaxAge bounds how long events stay in the stream (default 30 days).
	MaxAge time.Duration
	// Duplicates is the deduplication window for Nats-Msg-Id (default 10 minutes).
	Duplicates time.Duration
	// NodeTTL is how long a node's inventory entry lives without a refresh; a
	// node-updater silent for longer is considered lost (default 30s).
	NodeTTL time.Duration
	// ProcessedTTL is how long a consumer remembers a handled event id (default 24h).
	ProcessedTTL time.Duration
	// MaxConsumers bounds the stream's consumers (default 1,048,576). Every
	// node-updater has its own durable consumer, and nats-server's default
	// when a stream sets none is 1,000: a fleet of a thousand nodes would hit it.
	MaxConsumers int
}

// keep fills zero fields from an existing stream's config.
func (c *SetupConfig) keep(existing *jetstream.StreamConfig) {
	if existing == nil {
		return
	}
	if c.Replicas == 0 {
		c.Replicas = existing.Replicas
	}
	if c.MaxAge == 0 {
		c.MaxAge = existing.MaxAge
	}
	if c.Duplicates == 0 {
		c.Duplicates = existing.Duplicates
	}
	if c.MaxConsumers == 0 && existing.MaxConsumers > 0 {
		c.MaxConsumers = existing.MaxConsumers
	}
}

func (c *SetupConfig) setDefaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxAge == 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.Duplicates == 0 {
		c.Duplicates = 10 * time.Minute
	}
	if c.NodeTTL == 0 {
		c.NodeTTL = 30 * time.Second
	}
	if c.ProcessedTTL == 0 {
		c.ProcessedTTL = 24 * time.Hour
	}
	if c.MaxConsumers == 0 {
		c.MaxConsumers = 1 << 20
	}
}

// Setup creates or updates the CUTOVER stream and the KV buckets. It is
// idempotent: every service calls it at start-up.
func Setup(ctx context.Context, js jetstream.JetStream, cfg SetupConfig) error {
	existing, err := streamConfig(ctx, js, StreamName)
	if err != nil {
		return err
	}
	cfg.keep(existing)
	cfg.setDefaults()
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:         StreamName,
		Description:  "cutover events (CloudEvents 1.0, structured JSON)",
		Subjects:     []string{SubjectAll},
		Storage:      jetstream.FileStorage,
		Retention:    jetstream.LimitsPolicy,
		MaxAge:       cfg.MaxAge,
		Duplicates:   cfg.Duplicates,
		Replicas:     cfg.Replicas,
		MaxConsumers: cfg.MaxConsumers,
	})
	if err != nil {
		return fmt.Errorf("set up stream %s: %w", StreamName, err)
	}
	buckets := []jetstream.KeyValueConfig{
		{Bucket: BucketNodes, Description: "each node-updater's observed containers; an entry expires when its node goes silent", TTL: cfg.NodeTTL, History: 1},
		{Bucket: BucketUpgrades, Description: "the planner's state of each upgrade, updated with compare-and-swap", History: 5},
		{Bucket: BucketLocks, Description: "one active upgrade per scope", History: 1},
		{Bucket: BucketProcessed, Description: "event ids each consumer has handled, so a redelivery changes nothing twice", TTL: cfg.ProcessedTTL, History: 1},
	}
	for _, b := range buckets {
		b.Storage = jetstream.FileStorage
		b.Replicas = cfg.Replicas
		if kvStream, err := streamConfig(ctx, js, "KV_"+b.Bucket); err != nil {
			return err
		} else if kvStream != nil && b.Replicas < kvStream.Replicas {
			b.Replicas = kvStream.Replicas // never shrink a bucket an operator sized
		}
		if _, err := js.CreateOrUpdateKeyValue(ctx, b); err != nil {
			return fmt.Errorf("set up KV bucket %s: %w", b.Bucket, err)
		}
	}
	return nil
}

// streamConfig returns a stream's config, or nil when it does not exist.
func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", name, err)
	}
	cfg := st.CachedInfo().Config
	return &cfg, nil
}

// Publisher publishes events on JetStream.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a Publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Publish encodes e and publishes it, waiting for the stream's acknowledgement.
// A republished id inside the dedup window is acknowledged as a duplicate and
// stored once; that is not an error.
func (p *Publisher) Publish(ctx context.Context, e Event) error {
	m, err := Encode(e)
	if err != nil {
		return err
	}
	if _, err := p.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish %s %s on %s: %w", e.Type(), e.ID(), m.Subject, err)
	}
	return nil
}

// IsNotFound reports whether err says a KV key or stream object does not exist.
func IsNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
}
