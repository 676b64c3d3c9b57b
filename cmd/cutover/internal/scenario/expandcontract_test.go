package scenario

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/testkit"
)

const (
	ecTestRate    = 100              // writes per second, each read back: 200 HTTP requests per second
	ecTestMinLoad = 25 * time.Second // with ecTestRate: at least 2,500 writes
)

// ecImages builds the demo app's v1 (schema generation 1) and v2
// (generation 2) images, or skips when Docker or HAProxy is missing.
func ecImages(t *testing.T) (*client.Client, string, testkit.Image, testkit.Image) {
	cli, run, imgs := testImages(t, "ec", ecVersions...)
	return cli, run, imgs["v1"], imgs["v2"]
}

// TestExpandContractWithMixedVersions rolls the demo service from v1 to v2
// behind HAProxy, with drain, while v1 and v2 share one SQLite database
// through an expand migration before the roll and a contract migration
// after it, under a write-and-verify load (each write read back through
// HAProxy, and an earlier write re-read, so often by the other version). It
// asserts:
//   - no failed request during the whole run, and v1 and v2 each read
//     back rows the other wrote while both served;
//   - every acknowledged write is in the database afterwards, with the
//     name written, the version that acknowledged it, and display_name
//     backfilled (the contract ran);
//   - rows written by both versions exist;
//   - the schema is at version 3, clean;
//   - from the event stream: the expand completed (version 2) before the
//     first replica was drained, and the contract was requested only after
//     all three replicas were reported replaced by v2.
func TestExpandContractWithMixedVersions(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the expand/contract run takes about a minute")
	}
	cli, run, v1, v2 := ecImages(t)
	var logs, evs bytes.Buffer
	res, err := runExpandContract(t.Context(), cli, ecConfig{runConfig{
		Run: run, V1: v1, V2: v2, Rate: ecTestRate, MinLoad: ecTestMinLoad, WorkDir: t.TempDir(),
		Events: &evs, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("events:\n%s\nlogs:\n%s", &evs, &logs)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("expand/contract: %s", res.Load)
	// Enough load; problems checks the rest, as the demo does.
	if res.Load.Sent < int(ecTestMinLoad.Seconds())*ecTestRate*9/10 {
		t.Errorf("only %d writes were sent; want about %d/s for %v", res.Load.Sent, ecTestRate, ecTestMinLoad)
	}
	for _, p := range res.problems() {
		t.Error(p)
	}
	t.Log(res.dataSummary())
}

// TestECCheckOrderCatchesMisorderedMigrations feeds ecCheckOrder orders
// it must refuse, so the scenario's order assertion can fail.
func TestECCheckOrderCatchesMisorderedMigrations(t *testing.T) {
	step := func(typ, phase string, version uint, c string) ecStep {
		return ecStep{Type: typ, Phase: phase, Version: version, Container: c}
	}
	expand := []ecStep{step(events.TypeMigrationRequested, "expand", 0, ""), step(events.TypeMigrationCompleted, "", 2, "")}
	roll := func(c string) []ecStep {
		return []ecStep{step(events.TypeContainerDraining, "", 0, c), step(events.TypeContainerReplaced, "", 0, c)}
	}
	contract := []ecStep{step(events.TypeMigrationRequested, "contract", 0, ""), step(events.TypeMigrationCompleted, "", 3, "")}
	cat := func(parts ...[]ecStep) []ecStep {
		var out []ecStep
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		order []ecStep
		ok    bool
	}{
		{"expand, roll, contract", cat(expand, roll("a"), roll("b"), roll("c"), contract), true},
		{"contract before the last replica", cat(expand, roll("a"), roll("b"), contract, roll("c")), false},
		{"roll before the expand", cat(roll("a"), expand, roll("b"), roll("c"), contract), false},
		{"no contract", cat(expand, roll("a"), roll("b"), roll("c")), false},
		{"a replica not replaced", cat(expand, roll("a"), roll("b"), contract), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ecCheckOrder(tt.order); (err == nil) != tt.ok {
				t.Errorf("ecCheckOrder = %v; want ok %v", err, tt.ok)
			}
		})
	}
}
