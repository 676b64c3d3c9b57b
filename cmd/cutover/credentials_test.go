package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/events/natstest"
)

// TestWrongCredentialsSayWhatToFix runs the built CLI against a server with
// the generated authorization and TLS, as an operator does with the wrong
// file at hand: each mistake exits 1 with an error naming it and the fix,
// and no seed in it.
func TestWrongCredentialsSayWhatToFix(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildCutover(t)
	srv := natstest.StartSecure(t, natsauth.Fleet{Nodes: []string{"compute01"}})
	creds := filepath.Join(srv.Dir, "creds")
	// Another fleet's seeds and CA: what an operator has from a second cloud.
	other := t.TempDir()
	if _, err := natsauth.Write(filepath.Join(other, "creds"), natsauth.Fleet{Nodes: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	otherCA, _, _, err := natstest.WriteCerts(other)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, seed, ca string
		want           []string
	}{
		{"a node-updater's seed", natsauth.SeedFile(creds, "node-updater-compute01"), srv.CA,
			[]string{"the server refused this identity", "Permissions Violation", "credentials of cli", "cli.nk"}},
		{"a seed the server does not know", natsauth.SeedFile(filepath.Join(other, "creds"), "cli"), srv.CA,
			[]string{"refused these credentials", "--nats-nkey"}},
		{"another CA", natsauth.SeedFile(creds, "cli"), otherCA,
			[]string{"does not trust", "--nats-ca"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, bin, "list", "--nats", srv.ClientURL(), "--nats-nkey", tt.seed,
				"--nats-ca", tt.ca, "--nats-cert", srv.Cert, "--nats-key", srv.Key)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("the error does not say %q:\n%s", w, r.stderr)
				}
			}
			seed, err := os.ReadFile(tt.seed)
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.TrimSpace(string(seed)); strings.Contains(r.stdout+r.stderr, s) {
				t.Errorf("the output shows the seed:\n%s", r.stderr)
			}
		})
	}
}
