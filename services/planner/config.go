package planner

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nuid"

	"github.com/cutover-dev/cutover/inventory"
)

// Defaults of Config: the one place they are written (cmd/planner's flags
// default to zero and say these in their help).
const (
	DefaultScope            = "default"
	DefaultProgressDeadline = 10 * time.Minute
	DefaultDrainTimeout     = 30 * time.Minute
	DefaultBarrierTimeout   = 30 * time.Minute
	DefaultVerdictTimeout   = 5 * time.Minute
	DefaultPollInterval     = time.Second
	DefaultLeaseTTL         = 5 * time.Second
	DefaultAckWait          = 10 * time.Second
)

// Config configures a Planner. A zero field takes its default; New rejects
// a config Validate finds wrong.
type Config struct {
	// Scope names the lock that allows one active upgrade at a time
	// (default DefaultScope). It is part of a KV key: letters, digits,
	// '-', '_', '=', '/' and inner dots only.
	Scope string
	// Logger receives lifecycle logs.
	Logger *slog.Logger
	// Inventory, when set, gives rollout settings (max_unavailable, role
	// serial, dependencies); images always come from the node-updaters.
	Inventory *inventory.Inventory
	// ProgressDeadline bounds how long a wave waits for its nodes' answers
	// (default 10m). A node that never answers fails the wave with a reason
	// naming it, and failure_action applies, instead of a silent hang.
	ProgressDeadline time.Duration
	// DrainTimeout bounds how long a step that restarts a workload host
	// waits for dev.cutover.node.drained (default 30m, the time an
	// evacuator may need to live-migrate a node's VMs). Past it the step
	// fails without any command to the node and failure_action applies.
	DrainTimeout time.Duration
	// BarrierTimeout bounds how long a contract migration waits at its
	// version barrier for every instance of its service to run the new image
	// (default 30m). Past it the upgrade pauses with a reason naming the
	// instances behind, instead of waiting in silence; resume retries the
	// barrier with a fresh timeout.
	BarrierTimeout time.Duration
	// VerdictTimeout is how long a wave waits for the auditor's verdicts on
	// the wave before it, when the request asks to wait for verdicts and
	// sets no timeout of its own (default 5m). Past it the upgrade pauses.
	VerdictTimeout time.Duration
	// PollInterval is how often deadlines and version barriers are checked
	// (default 1s). A barrier reads the cutover-nodes bucket, which no
	// event announces, so it is polled rather than slept on.
	PollInterval time.Duration
	// InstanceID names this replica in the leader lease (default host-pid-random).
	InstanceID string
	// LeaseTTL is how long a leader lease that is not refreshed stays valid
	// (default 5s); a standby takes over once it saw no refresh for that long.
	LeaseTTL time.Duration
	// LeaseRefresh is how often the leader refreshes its lease (default
	// LeaseTTL/5); it must be shorter than LeaseTTL.
	LeaseRefresh time.Duration
	// AckWait is how long an event delivered to a planner that died goes
	// unacknowledged before the new leader gets it again (default 10s).
	AckWait time.Duration
}

func (c *Config) setDefaults() {
	if c.Scope == "" {
		c.Scope = DefaultScope
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&c.ProgressDeadline, DefaultProgressDeadline},
		{&c.DrainTimeout, DefaultDrainTimeout},
		{&c.BarrierTimeout, DefaultBarrierTimeout},
		{&c.VerdictTimeout, DefaultVerdictTimeout},
		{&c.PollInterval, DefaultPollInterval},
		{&c.LeaseTTL, DefaultLeaseTTL},
		{&c.AckWait, DefaultAckWait},
	} {
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	if c.InstanceID == "" {
		host, _ := os.Hostname()
		c.InstanceID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), nuid.Next())
	}
	if c.LeaseRefresh == 0 {
		c.LeaseRefresh = c.LeaseTTL / 5
	}
}

// Validate returns every problem with the config at once, each naming the
// field and what to set instead. A zero field stands for its default, so
// Validate can check a config before New fills them in (cmd/planner does).
func (c *Config) Validate() error {
	var errs []error
	if c.Scope != "" && !validScope(c.Scope) {
		errs = append(errs, fmt.Errorf("planner config: scope %q is not usable in a lock key; use letters, digits, '-', '_', '=', '/' or inner dots (e.g. %q)", c.Scope, DefaultScope))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"progress deadline", c.ProgressDeadline},
		{"drain timeout", c.DrainTimeout},
		{"barrier timeout", c.BarrierTimeout},
		{"verdict timeout", c.VerdictTimeout},
		{"poll interval", c.PollInterval},
		{"lease TTL", c.LeaseTTL},
		{"lease refresh", c.LeaseRefresh},
		{"ack wait", c.AckWait},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("planner config: %s %v is negative; set a positive duration, or 0 for the default", d.name, d.v))
		}
	}
	ttl := c.LeaseTTL
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	switch {
	case ttl > 0 && ttl < time.Millisecond:
		errs = append(errs, fmt.Errorf("planner config: lease TTL %v is too short to refresh; set at least 1ms (default %v)", ttl, DefaultLeaseTTL))
	case c.LeaseRefresh > 0 && c.LeaseRefresh >= ttl:
		errs = append(errs, fmt.Errorf("planner config: lease refresh %v must be shorter than the lease TTL %v; set it to about a fifth of the TTL, or 0 for that", c.LeaseRefresh, ttl))
	}
	return errors.Join(errs...)
}

// validScope reports whether scope can end the lock key "upgrade.<scope>".
func validScope(scope string) bool {
	if scope == "" || scope[0] == '.' || scope[len(scope)-1] == '.' {
		return false
	}
	for i, r := range scope {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=', r == '/':
		case r == '.' && scope[i-1] != '.':
		default:
			return false
		}
	}
	return true
}
