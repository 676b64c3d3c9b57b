package planner_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/planner"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  planner.Config
		want []string // substrings of the error, each naming a field; none: valid
	}{
		{name: "zero is every default", cfg: planner.Config{}},
		{name: "set values", cfg: planner.Config{Scope: "site-a/rack.1", ProgressDeadline: time.Minute, LeaseTTL: time.Second, LeaseRefresh: 100 * time.Millisecond}},
		{name: "scope with a space", cfg: planner.Config{Scope: "my scope"}, want: []string{`scope "my scope"`}},
		{name: "scope with a wildcard", cfg: planner.Config{Scope: "a.*"}, want: []string{"scope"}},
		{name: "scope ending in a dot", cfg: planner.Config{Scope: "a."}, want: []string{"scope"}},
		{name: "scope with two dots", cfg: planner.Config{Scope: "a..b"}, want: []string{"scope"}},
		{name: "negative durations", cfg: planner.Config{ProgressDeadline: -time.Second, DrainTimeout: -1, BarrierTimeout: -1, VerdictTimeout: -1, PollInterval: -1, AckWait: -1},
			want: []string{"progress deadline -1s is negative", "drain timeout", "barrier timeout", "verdict timeout", "poll interval", "ack wait"}},
		{name: "refresh not shorter than the TTL", cfg: planner.Config{LeaseTTL: time.Second, LeaseRefresh: time.Second}, want: []string{"lease refresh 1s must be shorter than the lease TTL 1s"}},
		{name: "refresh against the default TTL", cfg: planner.Config{LeaseRefresh: time.Minute}, want: []string{"lease TTL 5s"}},
		{name: "negative TTL", cfg: planner.Config{LeaseTTL: -time.Second}, want: []string{"lease TTL -1s is negative"}},
		{name: "TTL too short to refresh", cfg: planner.Config{LeaseTTL: time.Microsecond}, want: []string{"lease TTL 1µs is too short"}},
		{name: "every problem at once", cfg: planner.Config{Scope: "a b", AckWait: -1, LeaseTTL: time.Second, LeaseRefresh: 2 * time.Second}, want: []string{"scope", "ack wait", "lease refresh"}},
	} {
		if got := problems(tc.cfg.Validate()); !slices.EqualFunc(got, tc.want, strings.Contains) {
			t.Errorf("%s: Validate reports %q, want one problem saying each of %q", tc.name, got, tc.want)
		}
	}
}

// TestNewRejectsInvalidConfig: New validates before it touches NATS.
func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := planner.New(t.Context(), planner.Config{Scope: "two words"}, nil)
	if err == nil || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("New: %v, want the scope refused", err)
	}
}

// problems splits what Validate returned into its problems, one a line.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}
