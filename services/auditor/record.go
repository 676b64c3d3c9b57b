package auditor

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// ErrUpgradeNotFound is returned by History.Upgrade when no stored event
// carries the upgrade id.
var ErrUpgradeNotFound = errors.New("upgrade not found")

// Record is one stored event: its indexed attributes and the CloudEvent as it
// was received, in structured JSON.
type Record struct {
	// ID is the CloudEvents id, the record's key.
	ID string `json:"id"`
	// Type is the CloudEvents type.
	Type string `json:"type"`
	// Source is the CloudEvents source.
	Source string `json:"source"`
	// Subject is the CloudEvents subject, or "".
	Subject string `json:"subject,omitempty"`
	// UpgradeID is the upgradeid extension, or "".
	UpgradeID string `json:"upgradeid,omitempty"`
	// NodeID is the nodeid extension, or "".
	NodeID string `json:"nodeid,omitempty"`
	// CausationID is the causationid extension, or "".
	CausationID string `json:"causationid,omitempty"`
	// Time is when the stream stored the event, on the NATS server's clock
	// (the event's own time attribute, from its producer's clock, stays in
	// Event); the event's time, or StoredAt, for a record built without
	// the stream's (RecordOf). Information only: Sequence orders the history.
	Time time.Time `json:"time"`
	// Sequence is the event's stream sequence, the order of the history;
	// 0 when unknown.
	Sequence uint64 `json:"sequence,omitempty"`
	// StoredAt is when the auditor stored the event.
	StoredAt time.Time `json:"stored_at"`
	// Event is the whole CloudEvent in structured JSON mode.
	Event json.RawMessage `json:"event"`
}

// RecordOf builds the record of an event stored at the given time, without
// its stream position (see InStream).
func RecordOf(e events.Event, storedAt time.Time) (Record, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return Record{}, fmt.Errorf("encode event %s (%s) for the history: %w", e.ID(), e.Type(), err)
	}
	t := e.Time()
	if t.IsZero() {
		t = storedAt
	}
	return Record{
		ID:          e.ID(),
		Type:        e.Type(),
		Source:      e.Source(),
		Subject:     e.Subject(),
		UpgradeID:   events.UpgradeOf(e),
		NodeID:      events.NodeID(e),
		CausationID: events.CausationID(e),
		Time:        t.UTC(),
		StoredAt:    storedAt.UTC(),
		Event:       raw,
	}, nil
}

// UpgradeSummary is one upgrade as its stored events show it.
type UpgradeSummary struct {
	// ID is the upgrade id (the upgradeid extension).
	ID string `json:"id"`
	// Release is the release name from the upgrade request (or the plan), or "".
	Release string `json:"release"`
	// State is derived from the newest lifecycle event of the upgrade.
	State State `json:"state"`
	// FirstTime is the time of the upgrade's oldest event.
	FirstTime time.Time `json:"first_time"`
	// LastTime is the time of the upgrade's newest event.
	LastTime time.Time `json:"last_time"`
	// Events counts the stored events of the upgrade.
	Events int `json:"events"`
}

// State is where an upgrade stands according to its history.
type State string

// States an upgrade can be in. StateUnknown means no lifecycle event of the
// upgrade was stored (only node or migration events, for example).
const (
	StateUnknown        State = "unknown"
	StateRequested      State = "requested"
	StatePlanned        State = "planned"
	StateRunning        State = "running"
	StateCompleted      State = "completed"
	StateFailed         State = "failed"
	StatePaused         State = "paused"
	StateAborted        State = "aborted"
	StateRolledBack     State = "rolled-back"
	StateRollbackFailed State = "rollback-failed"
)

// lifecycle maps the event types that move an upgrade's state to that state.
// Rollback completion is handled apart: its result decides the state.
func lifecycle(typ string) (State, bool) {
	switch typ {
	case events.TypeUpgradeRequested:
		return StateRequested, true
	case events.TypeUpgradePlanned:
		return StatePlanned, true
	case events.TypeUpgradeStarted, events.TypeWaveStarted, events.TypeWaveCompleted:
		return StateRunning, true
	case events.TypeUpgradeCompleted:
		return StateCompleted, true
	case events.TypeUpgradeFailed:
		return StateFailed, true
	case events.TypeUpgradePaused:
		return StatePaused, true
	case events.TypeUpgradeAborted:
		return StateAborted, true
	case events.TypeRollbackCompleted:
		return StateRolledBack, true
	}
	return "", false
}

// LifecycleTypes returns the event types that StateOf understands: the
// upgrade request and the planner's status events. A store picks an
// upgrade's newest event among these to derive its state.
func LifecycleTypes() []string {
	return []string{
		events.TypeUpgradeRequested, events.TypeUpgradePlanned, events.TypeUpgradeStarted,
		events.TypeWaveStarted, events.TypeWaveCompleted, events.TypeUpgradeCompleted,
		events.TypeUpgradeFailed, events.TypeUpgradePaused, events.TypeUpgradeAborted,
		events.TypeRollbackCompleted,
	}
}

// StateOf returns the state an upgrade is in when its newest lifecycle event
// has type typ and JSON data data. A rollback.completed event whose result is
// "failed" gives StateRollbackFailed. A type outside LifecycleTypes gives
// StateUnknown.
func StateOf(typ string, data []byte) State {
	s, ok := lifecycle(typ)
	if !ok {
		return StateUnknown
	}
	if typ == events.TypeRollbackCompleted {
		var rc events.RollbackCompleted
		if err := json.Unmarshal(data, &rc); err == nil && rc.Result == "failed" {
			return StateRollbackFailed
		}
	}
	return s
}

// InStream sets the record's stream sequence and takes the stream's
// timestamp as its time.
func (r Record) InStream(seq uint64, storedByStream time.Time) Record {
	r.Sequence = seq
	if !storedByStream.IsZero() {
		r.Time = storedByStream.UTC()
	}
	return r
}
