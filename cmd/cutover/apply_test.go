package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

// TestApplyRefusesAServiceNoNodeRuns: a release naming nova_api (the
// container) for nova-api (the service) was stored with exit 0 and failed
// later in the planner on the missing dev.cutover.service label. apply now
// refuses it before publishing, with the name it meant; a release the fleet
// runs is requested as before.
func TestApplyRefusesAServiceNoNodeRuns(t *testing.T) {
	s := natstest.Start(t)
	rec := s.Record(t)
	kv, err := s.JS.KeyValue(t.Context(), events.BucketNodes)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"control01", "control02"} {
		raw, _ := json.Marshal(events.NodeInventory{Node: n, Containers: []events.ObservedContainer{
			{Name: "nova_api", Service: "nova-api", Image: "nova-api:2025.1"},
			{Name: "keystone", Service: "keystone", Image: "keystone:2025.1"},
		}})
		if _, err := kv.Put(t.Context(), n, raw); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	typo := write("typo.yaml", "release: r1\nservices:\n  nova_api:\n    image: nova-api:2025.1.1\n  keystone:\n    image: keystone:2025.1.1\n")
	r := runCLI(t.Context(), "apply", "-f", typo, "--nats", s.ClientURL())
	if r.code == 0 || !strings.Contains(r.stderr, "nova_api: did you mean nova-api?") || !strings.Contains(r.stderr, typo) {
		t.Errorf("apply of a release naming nova_api: exit %d, stderr %q; want a refusal naming the file and nova-api", r.code, r.stderr)
	}
	good := write("good.yaml", "release: r2\nservices:\n  nova-api:\n    image: nova-api:2025.1.1\n")
	if r := runCLI(t.Context(), "apply", "-f", good, "--nats", s.ClientURL()); r.code != 0 {
		t.Fatalf("apply of a release the fleet runs: exit %d, stderr %q", r.code, r.stderr)
	}
	natstest.Eventually(t, 10*time.Second, "the good request stored", func() bool { return len(rec.Of(events.TypeUpgradeRequested)) == 1 })
	for _, e := range rec.Of(events.TypeUpgradeRequested) {
		if d, _ := events.DataAs[events.UpgradeRequested](e); d.Release.Name != "r2" {
			t.Errorf("request for release %q stored; only r2 should be", d.Release.Name)
		}
	}
}
