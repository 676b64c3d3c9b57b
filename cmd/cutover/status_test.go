package main

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/planner"
)

func TestStatusShowsWhatTheNextWaveWaitsFor(t *testing.T) {
	u := &planner.Upgrade{ID: "u1", Phase: planner.PhaseRunning, VerdictTimeout: 5 * time.Minute,
		Gate: &planner.VerdictGate{Wave: 0, Since: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), Waiting: []string{"nova-api", "web"}}}
	var b strings.Builder
	printStatus(&b, u)
	want := "waiting  wave 1 waits for the auditor's healthy verdicts on wave 0: nova-api, web (since 2026-11-22T02:00:00Z, timeout 5m0s)"
	if !strings.Contains(b.String(), want) {
		t.Errorf("status:\n%s\nlacks %q", b.String(), want)
	}
}
