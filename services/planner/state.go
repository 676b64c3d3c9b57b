package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// Phases of an upgrade. completed, failed, rolled-back and aborted are final:
// the planner sends nothing more for the upgrade and releases the scope
// lock. paused waits for an operator (resume, rollback or abort) and keeps
// the lock, so no other upgrade starts on a half-updated fleet.
const (
	PhaseRunning     = "running"
	PhaseRollingBack = "rolling-back"
	PhaseCompleted   = "completed"
	PhaseFailed      = "failed"
	PhaseRolledBack  = "rolled-back"
	PhasePaused      = "paused"
	PhaseAborted     = "aborted"
)

// Node statuses within an upgrade.
const (
	NodePending   = "pending"
	NodeDraining  = "draining" // drain requested, waiting for dev.cutover.node.drained
	NodeSent      = "sent"
	NodeCompleted = "completed"
	NodeFailed    = "failed"
)

// Upgrade is the planner's state of one upgrade, the value of its key in the
// cutover-upgrades bucket. Every change is written with compare-and-swap on
// the key's revision, so two planners can never both advance it.
type Upgrade struct {
	ID            string                              `json:"id"`
	Release       events.Release                      `json:"release"`
	FailureAction string                              `json:"failure_action"`
	Phase         string                              `json:"phase"`
	RequestedAt   time.Time                           `json:"requested_at"`
	UpdatedAt     time.Time                           `json:"updated_at"`
	Plan          events.UpgradePlanned               `json:"plan"`
	Targets       map[string][]events.ContainerTarget `json:"targets"`
	Wave          int                                 `json:"wave"`
	// WaveStartedAt is when the current wave's commands were decided; the
	// progress deadline counts from it.
	WaveStartedAt time.Time `json:"wave_started_at,omitzero"`
	// Nodes holds each step's progress, keyed by StepKey(node, wave).
	Nodes    map[string]*NodeProgress `json:"nodes"`
	Rollback *RollbackProgress        `json:"rollback,omitempty"`
	Reason   string                   `json:"reason,omitempty"`
	// PauseRequested asks the upgrade to pause before its next wave.
	PauseRequested bool `json:"pause_requested,omitempty"`
	// Migrations holds the database migrations of upgraded services, in
	// plan order: expand before the first wave, contract after the version
	// barrier (every instance on the new image).
	Migrations []*MigrationProgress `json:"migrations,omitempty"`
	// Barrier says what a version barrier waits for, while it waits.
	Barrier string `json:"barrier,omitempty"`
	// Outbox holds events decided but not yet confirmed published. They are
	// saved with the state change that produced them and published after it,
	// so a crash in between neither loses nor repeats a step: the next
	// handler or start-up publishes them again with the same ids, which
	// JetStream deduplicates.
	Outbox []json.RawMessage `json:"outbox,omitempty"`
}

// NodeProgress is one node's part of an upgrade.
type NodeProgress struct {
	Node      string                   `json:"node"`
	Wave      int                      `json:"wave"`
	Status    string                   `json:"status"`
	CommandID string                   `json:"command_id,omitempty"`
	Results   []events.ContainerResult `json:"results,omitempty"`
	Error     string                   `json:"error,omitempty"`
	// SentAt is when the command was decided; the progress deadline counts
	// from it (a drained node's command goes out after its wave started).
	SentAt time.Time `json:"sent_at,omitzero"`
	// Drain says the step restarts a workload host: its node is drained first.
	Drain bool `json:"drain,omitempty"`
	// DrainID is the id of the drain request; the evacuator's answer carries it as causationid.
	DrainID string `json:"drain_id,omitempty"`
	// DrainRequestedAt is when the drain was requested; the drain timeout counts from it.
	DrainRequestedAt time.Time `json:"drain_requested_at,omitzero"`
	// Drained says the evacuator reported the node drained.
	Drained bool `json:"drained,omitempty"`
}

// Migration step statuses.
const (
	MigrationPending   = "pending"
	MigrationSent      = "sent"
	MigrationCompleted = "completed"
	MigrationFailed    = "failed"
)

// MigrationProgress is one service's database migration within an upgrade.
type MigrationProgress struct {
	Service  string `json:"service"`
	Driver   string `json:"driver"`
	Database string `json:"database"`
	Source   string `json:"source"`
	// FromVersion is the database's version before the upgrade; a rollback returns to it.
	FromVersion uint `json:"from_version"`
	// ToVersion is the release's migrations_version.
	ToVersion uint `json:"to_version"`
	// Expand, Contract and Rollback are the statuses of each phase's request.
	Expand   string `json:"expand"`
	Contract string `json:"contract"`
	Rollback string `json:"rollback,omitempty"`
	// CommandID is the id of the request in flight; answers carry it as causationid.
	CommandID string `json:"command_id,omitempty"`
	// SnapshotID is the snapshot the migrator took before expanding.
	SnapshotID string `json:"snapshot_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// ran reports whether the migration changed the database (so a rollback must take it back).
func (m *MigrationProgress) ran() bool {
	return m.Expand == MigrationCompleted || m.Expand == MigrationSent
}

// RollbackProgress tracks a rollback: nodes are returned to their previous
// images one at a time, in reverse order of their update.
type RollbackProgress struct {
	Reason    string   `json:"reason"`
	Queue     []string `json:"queue"`
	Current   string   `json:"current,omitempty"`
	CommandID string   `json:"command_id,omitempty"`
	Done      []string `json:"done"`
	Error     string   `json:"error,omitempty"`
}

// Final reports whether the planner will send nothing more for the upgrade.
func (u *Upgrade) Final() bool {
	switch u.Phase {
	case PhaseCompleted, PhaseFailed, PhaseRolledBack, PhaseAborted:
		return true
	}
	return false
}

// store keeps Upgrades in the cutover-upgrades bucket.
type store struct {
	kv jetstream.KeyValue
}

var errNoUpgrade = errors.New("no such upgrade")

func (s *store) get(ctx context.Context, id string) (*Upgrade, uint64, error) {
	entry, err := s.kv.Get(ctx, id)
	if events.IsNotFound(err) {
		return nil, 0, fmt.Errorf("get upgrade %s: %w", id, errNoUpgrade)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get upgrade %s: %w", id, err)
	}
	var u Upgrade
	if err := json.Unmarshal(entry.Value(), &u); err != nil {
		return nil, 0, fmt.Errorf("decode upgrade %s: %w", id, err)
	}
	return &u, entry.Revision(), nil
}

// put creates the key when rev is 0, else updates it if its revision is still rev.
func (s *store) put(ctx context.Context, u *Upgrade, rev uint64) (uint64, error) {
	u.UpdatedAt = time.Now().UTC()
	raw, err := json.Marshal(u)
	if err != nil {
		return 0, fmt.Errorf("encode upgrade %s: %w", u.ID, err)
	}
	if rev == 0 {
		rev, err = s.kv.Create(ctx, u.ID, raw)
	} else {
		rev, err = s.kv.Update(ctx, u.ID, raw, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("save upgrade %s: %w", u.ID, err)
	}
	return rev, nil
}

func (s *store) ids(ctx context.Context) ([]string, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list upgrades: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	return out, nil
}

// LoadUpgrade reads an upgrade's state, for the CLI's status command.
func LoadUpgrade(ctx context.Context, js jetstream.JetStream, id string) (*Upgrade, error) {
	kv, err := js.KeyValue(ctx, events.BucketUpgrades)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", events.BucketUpgrades, err)
	}
	u, _, err := (&store{kv: kv}).get(ctx, id)
	return u, err
}
