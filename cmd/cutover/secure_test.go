package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// TestUpgradeWithEveryServiceOnItsOwnIdentity runs cutover dev's stack with
// the credentials it generates and TLS (certificates made here): the
// planner, migrator, auditor, CLI and each node-updater connect on their own
// least-privilege identity, and a whole upgrade completes. Then every log
// line (at debug level) and every event of the run is searched for the
// identities' seeds: none may appear.
func TestUpgradeWithEveryServiceOnItsOwnIdentity(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := natstest.WriteCerts(dir); err != nil {
		t.Fatal(err)
	}
	logs := &natstest.Logs{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	nodes := []string{"n1", "n2"}
	cfg := stack.Config{DataDir: filepath.Join(dir, "data"), NATSListen: "127.0.0.1:0", Nodes: nodes, Logger: log}
	dn := stack.DevNATS{TLSCert: filepath.Join(dir, "server.pem"), TLSKey: filepath.Join(dir, "server-key.pem")}
	if err := dn.Secure(&cfg); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.WithoutCancel(t.Context())) })
	if !strings.HasPrefix(s.ClientURL(), "tls://") {
		t.Fatalf("client URL %s: the server does not require TLS", s.ClientURL())
	}

	var jss []jetstream.JetStream
	var specs []sim.NodeSpec
	for i, n := range nodes {
		js, err := s.Connect(t.Context(), "node-updater-"+n)
		if err != nil {
			t.Fatalf("node-updater-%s connects on its identity: %v", n, err)
		}
		jss = append(jss, js)
		specs = append(specs, sim.NodeSpec{Name: n, Containers: []sim.ContainerSpec{{Name: "web-" + string(rune('1'+i)), Service: "web", Image: "web:v1"}}})
	}
	fleet, err := sim.StartFleet(t.Context(), jss, sim.FleetConfig{Nodes: specs, Seed: 1, Logger: log.With("service", "node-updater")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close(context.WithoutCancel(t.Context())) })
	if err := s.WaitNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}

	e, err := events.New(events.Source("cli", ""), events.UpgradeRequested{RequestedBy: "secure test", Release: events.Release{Name: "v2", Services: map[string]events.ServiceRelease{"web": {Image: "web:v2"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := events.NewPublisher(s.JetStream()).Publish(t.Context(), e); err != nil {
		t.Fatalf("the CLI identity requests an upgrade: %v", err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := upgrades.Follow(ctx, s.JetStream(), e.ID(), &out, nil); err != nil {
		t.Fatalf("upgrade did not complete (%v):\n%s\nlogs:\n%s", err, out.String(), tail(logs.String(), 40))
	}
	for _, n := range specs {
		if img := fleet.Runtime(n.Name).Images()[n.Containers[0].Name]; img != "web:v2" {
			t.Errorf("%s runs %s, want web:v2", n.Name, img)
		}
	}
	if strings.Contains(logs.String(), "NATS refused") {
		t.Errorf("a service was refused something it needs:\n%s", grepLines(logs.String(), "NATS refused"))
	}

	// No seed in any log line or event of the run.
	n, err := s.WaitAudited(t.Context(), e.ID())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Store().Events(t.Context(), e.ID())
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	all.WriteString(logs.String())
	all.WriteString(out.String())
	for _, r := range recs {
		b, _ := json.Marshal(r)
		all.Write(b)
	}
	seeds, _ := filepath.Glob(filepath.Join(cfg.DataDir, stack.CredsDir, "*.nk"))
	if len(seeds) != 6 { // planner, migrator, auditor, cli, n1, n2
		t.Fatalf("seeds: %v, want 6", seeds)
	}
	for _, f := range seeds {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(f)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
		seed := strings.TrimSpace(string(b))
		if strings.Contains(all.String(), seed) || strings.Contains(all.String(), seed[:20]) {
			t.Errorf("the seed of %s appears in the logs or events", filepath.Base(f))
		}
	}
	t.Logf("%d events audited, %d bytes of logs searched", n, len(logs.String()))
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func grepLines(s, w string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, w) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestDevRefusesAnExposedListenWithoutTLS(t *testing.T) {
	tests := []struct {
		listen        string
		tls, insecure bool
		ok            bool
	}{
		{"127.0.0.1:4222", false, false, true},
		{"localhost:4222", false, false, true},
		{"[::1]:4222", false, false, true},
		{"0.0.0.0:4222", false, false, false},
		{":4222", false, false, false},
		{"10.0.0.5:4222", false, false, false},
		{"0.0.0.0:4222", true, false, true},
		{"0.0.0.0:4222", false, true, true},
	}
	for _, tt := range tests {
		err := stack.CheckListen(tt.listen, tt.tls, tt.insecure)
		if (err == nil) != tt.ok {
			t.Errorf("stack.CheckListen(%q, tls=%v, insecure=%v) = %v, want ok=%v", tt.listen, tt.tls, tt.insecure, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("error %q does not name the way out", err)
		}
	}
}
