package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestNATSConfigKeepsTheFleetWhole: nats-config without its nodes is a
// usage error, not an authorization that locks every node-updater out, and a
// run that leaves out nodes of an earlier one says which identities it drops.
func TestNATSConfigKeepsTheFleetWhole(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	if r := runCLI(t.Context(), "nats-config", "--out", dir); r.code != 2 || !strings.Contains(r.stderr, "--nodes or --inventory is required") {
		t.Fatalf("without nodes: exit %d, stderr %q; want 2 and the flags to give", r.code, r.stderr)
	}
	if r := runCLI(t.Context(), "nats-config", "--out", dir, "--nodes", "control01,control02,compute01"); r.code != 0 || r.stderr != "" {
		t.Fatalf("first run: exit %d, stderr %q", r.code, r.stderr)
	}
	// Adding compute02 by naming it alone drops the three others.
	r := runCLI(t.Context(), "nats-config", "--out", dir, "--nodes", "compute02")
	if r.code != 0 {
		t.Fatalf("second run: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"node-updater-compute01, node-updater-control01, node-updater-control02", "can no longer connect", "give every node"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the second run does not warn %q:\n%s", want, r.stderr)
		}
	}
	if r := runCLI(t.Context(), "nats-config", "--out", dir, "--nodes", "control01,control02,compute01,compute02"); r.code != 0 || r.stderr != "" {
		t.Errorf("the whole fleet again: exit %d, stderr %q; want no warning", r.code, r.stderr)
	}
}
