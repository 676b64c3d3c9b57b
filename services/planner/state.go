package planner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
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
	ID            string         `json:"id"`
	Release       events.Release `json:"release"`
	FailureAction string         `json:"failure_action"`
	Phase         string         `json:"phase"`
	// RequestedAt is when the planner accepted the request, on its own
	// clock: never the request's time attribute, which a client may leave
	// out or set from a clock that runs ahead or behind.
	RequestedAt time.Time `json:"requested_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Plan is the plan without its changes, which the upgrade.planned
	// events carry, and without its waves, which LoadUpgrade rebuilds from Nodes.
	Plan events.UpgradePlanned `json:"plan"`
	Wave int                   `json:"wave"`
	// WaveStartedAt is when the current wave's commands were decided; the
	// progress deadline counts from it.
	WaveStartedAt time.Time `json:"wave_started_at,omitzero"`
	// Nodes holds each step's progress, keyed by StepKey(node, wave). Each
	// step is stored under its own key (see store), so a node's answer
	// rewrites that step and the small upgrade record, not the whole fleet.
	Nodes    map[string]*NodeProgress `json:"nodes,omitempty"`
	Rollback *RollbackProgress        `json:"rollback,omitempty"`
	Reason   string                   `json:"reason,omitempty"`
	// PauseRequested asks the upgrade to pause before its next wave.
	PauseRequested bool `json:"pause_requested,omitempty"`
	// PauseAfterCanary comes from the request: the upgrade pauses once its
	// first wave completed, until an operator promotes it.
	PauseAfterCanary bool `json:"pause_after_canary,omitempty"`
	// AwaitingPromotion says the upgrade is paused after its canary.
	AwaitingPromotion bool `json:"awaiting_promotion,omitempty"`
	// Promoted says an operator promoted the canary: no pause after it.
	Promoted bool `json:"promoted,omitempty"`
	// Migrations holds the database migrations of upgraded services, in
	// plan order: expand before the first wave, contract after the version
	// barrier (every instance on the new image).
	Migrations []*MigrationProgress `json:"migrations,omitempty"`
	// WaitForVerdicts and VerdictTimeout come from the request: each wave
	// waits for the auditor's healthy verdicts on the wave before it.
	WaitForVerdicts bool          `json:"wait_for_verdicts,omitempty"`
	VerdictTimeout  time.Duration `json:"verdict_timeout,omitempty"`
	// Gate holds the verdicts the next wave waits for, while it waits.
	Gate *VerdictGate `json:"gate,omitempty"`
	// Barrier says what a version barrier waits for, while it waits.
	Barrier string `json:"barrier,omitempty"`
	// BarrierSince is when the version barrier began to wait; the barrier
	// timeout counts from it.
	BarrierSince time.Time `json:"barrier_since,omitzero"`
	// Outbox holds events decided but not yet confirmed published. They are
	// saved with the state change that produced them and published after it,
	// so a crash in between neither loses nor repeats a step: the next
	// handler or start-up publishes them again with the same ids, which
	// JetStream deduplicates.
	Outbox []json.RawMessage `json:"outbox,omitempty"`

	// seq counts the upgrade's saves; each step records the save that last
	// changed it, so a late write from a deposed leader never overwrites a
	// newer step.
	seq uint64
	// pending holds steps changed by the last save and not yet written to
	// their own keys; the save carries them, flush writes them.
	pending map[string]*NodeProgress
	// journal names the keys holding an outbox or pending steps too large
	// to travel inside the upgrade's record; flush deletes them.
	journal []string
	// dirty names the steps changed since the upgrade was read. Steps are
	// shared with the store's cache and never changed in place: edit
	// copies one before it changes.
	dirty map[string]bool
}

// edit returns step key for changing: a copy of its own the next save writes.
func (u *Upgrade) edit(key string) *NodeProgress {
	if u.dirty[key] {
		return u.Nodes[key]
	}
	c := *u.Nodes[key]
	u.Nodes[key] = &c
	if u.dirty == nil {
		u.dirty = map[string]bool{}
	}
	u.dirty[key] = true
	return &c
}

// NodeProgress is one node's part of an upgrade.
type NodeProgress struct {
	Node   string `json:"node"`
	Wave   int    `json:"wave"`
	Status string `json:"status"`
	// Targets are the containers the step updates and their images.
	Targets   []events.ContainerTarget `json:"targets"`
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
	// Seq is the save of the upgrade that last changed the step.
	Seq uint64 `json:"seq,omitempty"`
}

// VerdictGate is the wait of a wave for the auditor's verdicts on the wave
// before it.
type VerdictGate struct {
	// Wave is the wave whose verdicts are awaited.
	Wave int `json:"wave"`
	// Since is when that wave completed (or the upgrade resumed); the
	// verdict timeout counts from it.
	Since time.Time `json:"since"`
	// Waiting lists the services the wave changed that have no healthy
	// verdict yet.
	Waiting []string `json:"waiting"`
}

// Migration step statuses.
const (
	MigrationPending   = "pending"
	MigrationSent      = "sent"
	MigrationCompleted = "completed"
	MigrationFailed    = "failed"
	// MigrationSkipped: a database migrated by commands has no command for
	// the phase; nothing ran.
	MigrationSkipped = "skipped"
)

// MigrationProgress is one service's database migration within an upgrade.
type MigrationProgress struct {
	Service  string `json:"service"`
	Driver   string `json:"driver"`
	Database string `json:"database"`
	Source   string `json:"source"`
	// SnapshotMethod is the inventory's snapshot_method ("" = the migrator's default).
	SnapshotMethod string `json:"snapshot_method,omitempty"`
	// Fence is the inventory's fence ("" = none).
	Fence string `json:"fence,omitempty"`
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
	// Commands and Image: a database migrated by commands in a one-off
	// container from the release's Image (inventory database.commands).
	Commands *inventory.DatabaseCommands `json:"commands,omitempty"`
	Image    string                      `json:"image,omitempty"`
	// PostRoll counts the steps after the barrier (migrate, online data,
	// contract) already completed, for a database migrated by commands;
	// Contract is the status of the one in hand.
	PostRoll int `json:"post_roll,omitempty"`
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

// LoadUpgrade reads an upgrade's state, for the CLI's status command.
func LoadUpgrade(ctx context.Context, js jetstream.JetStream, id string) (*Upgrade, error) {
	kv, err := js.KeyValue(ctx, events.BucketUpgrades)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", events.BucketUpgrades, err)
	}
	u, _, err := (&store{kv: kv}).get(ctx, id)
	if err != nil {
		return nil, err
	}
	u.Plan.Waves = wavesOf(u.Nodes)
	return u, nil
}

// ListUpgrades reads every upgrade's record, for the CLI's list command and
// to resolve an id prefix or a release name. The upgrades come without
// their steps (Nodes is nil): a list need not read every step of every
// upgrade.
func ListUpgrades(ctx context.Context, js jetstream.JetStream) ([]*Upgrade, error) {
	kv, err := js.KeyValue(ctx, events.BucketUpgrades)
	if events.IsNotFound(err) || errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil // no planner has run yet: no upgrades
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", events.BucketUpgrades, err)
	}
	s := &store{kv: kv}
	ids, err := s.ids(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]*Upgrade, 0, len(ids))
	for _, id := range ids {
		entry, err := kv.Get(ctx, id)
		if events.IsNotFound(err) {
			continue // deleted since listed
		}
		if err != nil {
			return nil, fmt.Errorf("get upgrade %s: %w", id, err)
		}
		var r record
		if err := json.Unmarshal(entry.Value(), &r); err != nil {
			return nil, fmt.Errorf("decode upgrade %s: %w", id, err)
		}
		u := r.Upgrade
		u.Nodes, u.Outbox = nil, nil
		out = append(out, &u)
	}
	return out, nil
}
