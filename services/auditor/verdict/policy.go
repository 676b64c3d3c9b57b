package verdict

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Verdicts a window can end with, as in events.HealthVerdict.Verdict.
const (
	Healthy      = "healthy"
	Failing      = "failing"
	Inconclusive = "inconclusive"
)

// Actions a policy takes on a failing verdict.
const (
	// ActionRollback publishes dev.cutover.rollback.requested for the upgrade.
	ActionRollback = "rollback"
	// ActionReport only publishes the verdict.
	ActionReport = "report"
)

// Policy is how one service is judged. Zero fields take the defaults noted.
type Policy struct {
	// ConsecutiveFailures fails the service as soon as one source (a node or
	// container) reports this many failures in a row (default 3).
	ConsecutiveFailures int
	// FailureRatio fails the service when, at the end of the window, at
	// least this fraction of its signals failed (default 0.5)...
	FailureRatio float64
	// MinSignals ...provided the window holds at least this many signals
	// (default 4).
	MinSignals int
	// MinHealthy is how long the service must have been passing, without a
	// failure, at the end of the window to be judged healthy; shorter is
	// inconclusive (default 0: one passing signal after the last failure).
	MinHealthy time.Duration
	// MaxInterruption fails the service when a container of it was measured
	// (container.replaced interruption_ms) out of service for longer
	// (default 0: no bound).
	MaxInterruption time.Duration
	// Action is ActionRollback (default) or ActionReport.
	Action string
}

// withDefaults returns p with its zero fields set to the defaults.
func (p Policy) withDefaults() Policy {
	p.ConsecutiveFailures = cmp.Or(p.ConsecutiveFailures, 3)
	p.FailureRatio = cmp.Or(p.FailureRatio, 0.5)
	p.MinSignals = cmp.Or(p.MinSignals, 4)
	p.Action = cmp.Or(p.Action, ActionRollback)
	return p
}

// Validate returns every problem with the policy at once.
func (p Policy) Validate() error {
	var errs []error
	if p.ConsecutiveFailures < 0 {
		errs = append(errs, fmt.Errorf("consecutive failures %d: must be positive", p.ConsecutiveFailures))
	}
	if p.FailureRatio < 0 || p.FailureRatio > 1 {
		errs = append(errs, fmt.Errorf("failure ratio %v: must be in (0, 1]", p.FailureRatio))
	}
	if p.MinSignals < 0 {
		errs = append(errs, fmt.Errorf("min signals %d: must be positive", p.MinSignals))
	}
	if p.MinHealthy < 0 || p.MaxInterruption < 0 {
		errs = append(errs, errors.New("min healthy and max interruption: must not be negative"))
	}
	if p.Action != "" && p.Action != ActionRollback && p.Action != ActionReport {
		errs = append(errs, fmt.Errorf("action %q: must be %q or %q", p.Action, ActionRollback, ActionReport))
	}
	return errors.Join(errs...)
}

// Tally is what a window observed of one service: counters and the few
// facts the policy needs, never the whole list of signals.
type Tally struct {
	// Start and End bound the window (stream time).
	Start, End time.Time
	// Signals and Failures count the signals in the window.
	Signals, Failures int
	// WorstRun is the longest run of consecutive failures of one source,
	// and WorstRunSource that source.
	WorstRun       int
	WorstRunSource string
	// LastFailure is the time of the newest failure, zero when none.
	LastFailure time.Time
	// HealthySince is the time of the first pass after the last failure
	// (or of the first pass when none failed); zero when no pass followed.
	HealthySince time.Time
	// LastPass is the time of the newest pass, zero when none.
	LastPass time.Time
	// Interruption is the longest measured interruption of a container of
	// the service in the wave, and Interrupted names that container.
	Interruption time.Duration
	Interrupted  string
}

// Evaluate applies p to a window's tally. Before the window closed it only
// decides failures that cannot be undone (consecutive failures, a too long
// interruption) and otherwise returns decided=false; once closed it always
// decides. The evidence says which rule decided and with what numbers.
func Evaluate(p Policy, t Tally, closed bool) (verdict string, evidence []string, decided bool) {
	p = p.withDefaults()
	if p.MaxInterruption > 0 && t.Interruption > p.MaxInterruption {
		return Failing, []string{fmt.Sprintf("container %s was interrupted for %v, above max_interruption %v",
			t.Interrupted, t.Interruption, p.MaxInterruption)}, true
	}
	if t.WorstRun >= p.ConsecutiveFailures {
		return Failing, []string{fmt.Sprintf("%d consecutive failures from %s (policy: %d)",
			t.WorstRun, t.WorstRunSource, p.ConsecutiveFailures)}, true
	}
	if !closed {
		return "", nil, false
	}
	span := fmt.Sprintf("%s to %s", t.Start.UTC().Format(time.RFC3339Nano), t.End.UTC().Format(time.RFC3339Nano))
	counts := fmt.Sprintf("%d signals, %d failed", t.Signals, t.Failures)
	if t.Signals == 0 {
		return Inconclusive, []string{"no health signal in the window " + span + "; no signal is not healthy"}, true
	}
	if t.Signals >= p.MinSignals && float64(t.Failures) >= p.FailureRatio*float64(t.Signals) {
		return Failing, []string{fmt.Sprintf("%s: failure ratio %.2f reaches %.2f (at least %d signals) in the window %s",
			counts, float64(t.Failures)/float64(t.Signals), p.FailureRatio, p.MinSignals, span)}, true
	}
	if t.HealthySince.IsZero() {
		return Inconclusive, []string{counts + ": no passing signal after the last failure in the window " + span}, true
	}
	if healthy := t.LastPass.Sub(t.HealthySince); healthy < p.MinHealthy {
		return Inconclusive, []string{fmt.Sprintf("%s: passing for %v only, below the minimum healthy time %v", counts, healthy, p.MinHealthy)}, true
	}
	ev := []string{fmt.Sprintf("%s in the window %s; passing since %s", counts, span, t.HealthySince.UTC().Format(time.RFC3339Nano))}
	if t.Interrupted != "" {
		ev = append(ev, fmt.Sprintf("longest interruption %v (container %s)", t.Interruption, t.Interrupted))
	}
	return Healthy, ev, true
}
