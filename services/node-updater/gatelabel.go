package nodeupdater

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// LabelHealthGate is set on each new container: the health gate of the
// command that created it, as JSON. A node-updater that crashed while the
// gate ran finds the container at start-up and judges it by the same gate
// (minimum healthy time, timeout, probe), not by the default one, which
// would accept a container that runs but fails the command's probe.
const LabelHealthGate = "dev.cutover.health-gate"

// LabelCommand and LabelUpgrade are set on each new container: the id of
// the command that created it and its upgrade. Recovery after a crash
// reports what it did to the container as caused by that command, so the
// events land in the upgrade's history.
const (
	LabelCommand = "dev.cutover.command"
	LabelUpgrade = "dev.cutover.upgrade"
)

// commandLabels returns the labels that record the command cause on its
// new containers.
func commandLabels(cause events.Event) map[string]string {
	out := map[string]string{}
	if id := cause.ID(); id != "" {
		out[LabelCommand] = id
	}
	if up := events.UpgradeID(cause); up != "" {
		out[LabelUpgrade] = up
	}
	return out
}

// causedByLabels returns the options that make an event caused by the
// command recorded in labels, when they record one.
func causedByLabels(labels map[string]string) []events.Option {
	var opts []events.Option
	if id := labels[LabelCommand]; id != "" {
		opts = append(opts, func(e *events.Event) { e.SetExtension(events.ExtCausationID, id) })
	}
	if up := labels[LabelUpgrade]; up != "" {
		opts = append(opts, events.WithUpgrade(up))
	}
	return opts
}

// gateLabel is the JSON of LabelHealthGate.
type gateLabel struct {
	MinHealthyMs int64         `json:"min_healthy_ms"`
	HoldMs       int64         `json:"hold_ms,omitempty"`
	TimeoutMs    int64         `json:"timeout_ms"`
	Probe        *events.Probe `json:"probe,omitempty"`
}

// gateLabels returns the labels that record t's health gate on its new
// container.
func gateLabels(t events.ContainerTarget) map[string]string {
	g := gateFor(t, true)
	raw, err := json.Marshal(gateLabel{MinHealthyMs: g.minHealthy.Milliseconds(), HoldMs: g.hold.Milliseconds(), TimeoutMs: g.timeout.Milliseconds(), Probe: g.probe})
	if err != nil { // cannot happen: plain fields
		return nil
	}
	return map[string]string{LabelHealthGate: string(raw)}
}

// recordedGate returns the health gate recorded on a new container, or the
// default gate when there is none (a container created by an older
// node-updater) or it cannot be read, with an error saying why.
func recordedGate(labels map[string]string) (healthGate, error) {
	def := healthGate{minHealthy: DefaultMinHealthy, timeout: DefaultHealthTimeout, fresh: true}
	raw, ok := labels[LabelHealthGate]
	if !ok {
		return def, nil
	}
	var l gateLabel
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return def, fmt.Errorf("label %s=%q is not the JSON a node-updater writes: %w", LabelHealthGate, raw, err)
	}
	if l.MinHealthyMs < 0 || l.HoldMs < 0 || l.TimeoutMs <= 0 {
		return def, fmt.Errorf("label %s=%q: durations must not be negative and timeout_ms must be positive", LabelHealthGate, raw)
	}
	return healthGate{
		minHealthy: time.Duration(l.MinHealthyMs) * time.Millisecond,
		hold:       time.Duration(l.HoldMs) * time.Millisecond,
		timeout:    time.Duration(l.TimeoutMs) * time.Millisecond,
		fresh:      true,
		probe:      l.Probe,
	}, nil
}
