package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// TestDevServesTheDashboard checks the wiring of cutover dev --http: the
// dashboard page and the history API answer, and shutdown is not held up by
// an open event stream.
func TestDevServesTheDashboard(t *testing.T) {
	addr := freeAddr(t)
	s, err := stack.Start(t.Context(), stack.Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", HTTP: addr})
	if err != nil {
		t.Fatal(err)
	}
	page, err := testkit.HTTP(t.Context(), http.MethodGet, "http://"+addr+"/", "")
	if err != nil || !strings.Contains(strings.ToLower(page), "<html") {
		t.Fatalf("dashboard page: %v %.200q", err, page)
	}
	if api, err := testkit.HTTP(t.Context(), http.MethodGet, "http://"+addr+"/api/upgrades", ""); err != nil || !strings.HasPrefix(strings.TrimSpace(api), "[") {
		t.Fatalf("history API: %v %q", err, api)
	}
	if m, err := testkit.HTTP(t.Context(), http.MethodGet, "http://"+addr+"/metrics", ""); err != nil || !strings.Contains(m, "cutover_consumer_pending_messages") {
		t.Fatalf("metrics: %v %.300q", err, m)
	}
	// An open Server-Sent Events stream must not hold up Close.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/api/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
