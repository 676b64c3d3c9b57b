package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events/natstest"
)

// TestHTTPAuth: an exposed --http without authentication is refused before
// anything starts; with a token file, /api and /metrics answer 401 without
// the token and 200 with it.
func TestHTTPAuth(t *testing.T) {
	s := natstest.Start(t)
	err := run(t.Context(), []string{"--nats", s.Server.ClientURL(), "--store", filepath.Join(t.TempDir(), "a.db"), "--http", "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("an exposed --http without auth: %v, want a refusal naming --insecure", err)
	}

	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("s3cr3t-t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := natstest.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--nats", s.Server.ClientURL(), "--store", filepath.Join(t.TempDir(), "b.db"), "--http", addr, "--http-token-file", tok, "--log-level", "warn"})
	}()
	status := func(path, token string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	natstest.Eventually(t, 20*time.Second, "the HTTP API up", func() bool { return status("/api/upgrades", "s3cr3t-t0ken") == 200 })
	for _, p := range []string{"/", "/api/upgrades", "/metrics", "/api/stream"} {
		if got := status(p, ""); got != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", p, got)
		}
		if got := status(p, "wrong"); got != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", p, got)
		}
	}
	if got := status("/metrics", "s3cr3t-t0ken"); got != 200 {
		t.Errorf("GET /metrics with the token: %d", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
