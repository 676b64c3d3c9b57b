package verdict_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

func TestEvaluate(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	window := func(tl verdict.Tally) verdict.Tally {
		tl.Start, tl.End = t0, at(10)
		return tl
	}
	tests := []struct {
		name     string
		policy   verdict.Policy
		tally    verdict.Tally
		closed   bool
		want     string // "" = undecided
		evidence string // a substring of the first evidence line
	}{
		{name: "no signal is inconclusive, never healthy", tally: window(verdict.Tally{}), closed: true,
			want: verdict.Inconclusive, evidence: "no health signal"},
		{name: "open window without failure waits", tally: window(verdict.Tally{Signals: 3, LastPass: at(3), HealthySince: at(1)}),
			want: ""},
		{name: "consecutive failures fail before the window closes", tally: window(verdict.Tally{Signals: 3, Failures: 3, WorstRun: 3, WorstRunSource: "n1/web-1"}),
			want: verdict.Failing, evidence: "3 consecutive failures from n1/web-1"},
		{name: "fewer consecutive failures than the policy do not", policy: verdict.Policy{ConsecutiveFailures: 5},
			tally: window(verdict.Tally{Signals: 4, Failures: 4, WorstRun: 4}), want: ""},
		{name: "failure ratio at the end of the window", tally: window(verdict.Tally{Signals: 10, Failures: 5, WorstRun: 2, LastPass: at(9), HealthySince: at(9)}),
			closed: true, want: verdict.Failing, evidence: "failure ratio 0.50"},
		{name: "ratio below threshold is healthy", tally: window(verdict.Tally{Signals: 10, Failures: 4, WorstRun: 1, LastPass: at(9), HealthySince: at(5)}),
			closed: true, want: verdict.Healthy, evidence: "10 signals, 4 failed"},
		{name: "ratio needs min signals", tally: window(verdict.Tally{Signals: 3, Failures: 2, WorstRun: 1, LastPass: at(9), HealthySince: at(9)}),
			closed: true, want: verdict.Healthy},
		{name: "ratio is not judged before the window closes", tally: window(verdict.Tally{Signals: 10, Failures: 9, WorstRun: 2}),
			want: ""},
		{name: "healthy", tally: window(verdict.Tally{Signals: 5, LastPass: at(9), HealthySince: at(1)}),
			closed: true, want: verdict.Healthy, evidence: "passing since"},
		{name: "only failures below the thresholds is inconclusive", tally: window(verdict.Tally{Signals: 2, Failures: 2, WorstRun: 2, LastFailure: at(2)}),
			closed: true, want: verdict.Inconclusive, evidence: "no passing signal"},
		{name: "healthy for less than min healthy is inconclusive", policy: verdict.Policy{MinHealthy: 5 * time.Second},
			tally:  window(verdict.Tally{Signals: 6, Failures: 2, WorstRun: 2, LastFailure: at(6), HealthySince: at(7), LastPass: at(9)}),
			closed: true, want: verdict.Inconclusive, evidence: "below the minimum healthy time 5s"},
		{name: "healthy for min healthy", policy: verdict.Policy{MinHealthy: 5 * time.Second},
			tally:  window(verdict.Tally{Signals: 9, Failures: 1, WorstRun: 1, LastFailure: at(1), HealthySince: at(2), LastPass: at(9)}),
			closed: true, want: verdict.Healthy},
		{name: "interruption above max fails at once", policy: verdict.Policy{MaxInterruption: 500 * time.Millisecond},
			tally: window(verdict.Tally{Interruption: 1200 * time.Millisecond, Interrupted: "ovs-1 on n2"}),
			want:  verdict.Failing, evidence: "container ovs-1 on n2 was interrupted for 1.2s, above max_interruption 500ms"},
		{name: "interruption within max is fine", policy: verdict.Policy{MaxInterruption: 2 * time.Second},
			tally:  window(verdict.Tally{Signals: 1, LastPass: at(5), HealthySince: at(5), Interruption: time.Second, Interrupted: "ovs-1"}),
			closed: true, want: verdict.Healthy},
		{name: "no max interruption means no bound", tally: window(verdict.Tally{Interruption: time.Hour, Interrupted: "ovs-1"}),
			want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ev, decided := verdict.Evaluate(tt.policy, tt.tally, tt.closed)
			if decided != (tt.want != "") || got != tt.want {
				t.Fatalf("Evaluate = %q (decided %v), want %q; evidence %q", got, decided, tt.want, ev)
			}
			if decided && len(ev) == 0 {
				t.Fatal("a decided verdict has no evidence")
			}
			if tt.evidence != "" && !strings.Contains(ev[0], tt.evidence) {
				t.Errorf("evidence %q does not say %q", ev[0], tt.evidence)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy verdict.Policy
		want   []string
	}{
		{name: "zero is valid", policy: verdict.Policy{}},
		{name: "every problem at once", policy: verdict.Policy{ConsecutiveFailures: -1, FailureRatio: 2, Action: "explode"},
			want: []string{"consecutive failures -1", "failure ratio 2", `action "explode"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("Validate() = %v, want errors %q", err, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
