package nodeupdater

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults applied by Config.setDefaults and per container target.
const (
	// DefaultInventoryEvery refreshes the node's KV entry well inside the
	// bucket's 30s TTL, so two lost refreshes in a row still keep the node alive.
	DefaultInventoryEvery = 10 * time.Second
	// DefaultHeartbeatEvery is the period of dev.cutover.node.heartbeat events.
	DefaultHeartbeatEvery = 30 * time.Second
	// DefaultMinHealthy is how long a container without a Docker healthcheck
	// must run without exiting or restarting to count as healthy.
	DefaultMinHealthy = time.Second
	// DefaultHealthTimeout bounds the wait for a new container to become healthy.
	DefaultHealthTimeout = 60 * time.Second
	// DefaultPullAttempts, DefaultPullBackoff and DefaultPullBackoffMax
	// bound the retries of a failed pull (1s, 2s, 4s, 8s between five tries).
	DefaultPullAttempts   = 5
	DefaultPullBackoff    = time.Second
	DefaultPullBackoffMax = 30 * time.Second
	// DefaultStopTimeout is the grace period of a stop when the container sets none.
	DefaultStopTimeout = 10 * time.Second
)

// Config configures an Updater. Zero values take defaults.
type Config struct {
	// Node is the node name: it selects the containers labelled
	// dev.cutover.node=<Node>, the command subject and the KV key. It must be
	// a valid NATS subject token.
	Node string
	// AgentVersion is reported in the inventory and heartbeats (default "dev").
	AgentVersion string
	// InventoryEvery is the period of the inventory refresh (default 10s).
	InventoryEvery time.Duration
	// HeartbeatEvery is the period of heartbeat events (default 30s); a
	// negative value turns heartbeats off. Zero takes the default.
	HeartbeatEvery time.Duration
	// Logger receives lifecycle logs at Info and per-event logs at Debug
	// (default slog.Default()).
	Logger *slog.Logger
	// AckWait is how long JetStream waits for the ack of a command before
	// redelivering it (default 30s); the updater sends InProgress every
	// AckWait/3 while it works. After a crash the unacked command comes back
	// once AckWait has passed, so a short AckWait resumes sooner.
	AckWait time.Duration
	// Adopt names containers the updater manages though they carry no
	// dev.cutover.node label, by container name (what the inventory places
	// on this node; cmd/node-updater fills it from --inventory). A container
	// labelled for any node is never adopted, and nothing else is.
	Adopt map[string]Adopted
	// PullAttempts is how often a pull is tried before its step fails
	// (default 5): a registry that refused a connection, timed out or
	// answered 5xx is often back seconds later. An image the registry does
	// not have (not found) fails at once.
	PullAttempts int
	// PullBackoff is the wait after the first failed pull, doubled after
	// each further failure up to PullBackoffMax (defaults 1s and 30s). No
	// wait goes past the command's deadline: a retry that could not start
	// before it is not made.
	PullBackoff, PullBackoffMax time.Duration
	// AfterStep, when set, is called after each step of a replacement has
	// taken effect on the engine, with the step's name (StepPull,
	// StepRename, StepStop, StepCreate, StepStart, StepHealth). It exists so
	// tests can kill the process at a precise point (cmd/node-updater wires
	// it to CUTOVER_CRASH_AFTER); it must not block.
	AfterStep func(step string)
}

func (c *Config) setDefaults() {
	c.AgentVersion = cmp.Or(c.AgentVersion, "dev")
	c.InventoryEvery = cmp.Or(c.InventoryEvery, DefaultInventoryEvery)
	c.HeartbeatEvery = cmp.Or(c.HeartbeatEvery, DefaultHeartbeatEvery)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.PullAttempts = cmp.Or(c.PullAttempts, DefaultPullAttempts)
	c.PullBackoff = cmp.Or(c.PullBackoff, DefaultPullBackoff)
	c.PullBackoffMax = cmp.Or(c.PullBackoffMax, DefaultPullBackoffMax)
}

// Validate returns every problem with the config at once.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Node == "":
		errs = append(errs, errors.New("node name is empty; set it to this host's name in the inventory"))
	case strings.ContainsAny(c.Node, ".*> \t\r\n"):
		errs = append(errs, fmt.Errorf("node name %q contains one of . * > or whitespace; it must be one NATS subject token", c.Node))
	}
	if c.AckWait < 0 {
		errs = append(errs, fmt.Errorf("ack wait %s is negative", c.AckWait))
	}
	for name, a := range c.Adopt {
		if name == "" || a.Service == "" {
			errs = append(errs, fmt.Errorf("adopted container %q has no name or no service; give both (from the inventory)", name))
		}
	}
	if c.PullAttempts < 0 || c.PullBackoff < 0 || c.PullBackoffMax < 0 {
		errs = append(errs, fmt.Errorf("pull retries (attempts %d, backoff %s, max %s) must not be negative", c.PullAttempts, c.PullBackoff, c.PullBackoffMax))
	}
	if c.InventoryEvery < 0 {
		errs = append(errs, fmt.Errorf("inventory period %s is negative", c.InventoryEvery))
	}
	return errors.Join(errs...)
}
