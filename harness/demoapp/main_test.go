package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestApp(t *testing.T, mode string, slow time.Duration) (*app, *httptest.Server) {
	t.Helper()
	a := &app{
		cfg:      config{version: "v7", mode: mode, dataDir: t.TempDir(), slow: slow},
		hostname: "h1",
		started:  time.Now(),
	}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(srv.Close)
	return a, srv
}

func request(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHealthByMode(t *testing.T) {
	tests := []struct {
		mode string
		want int
	}{
		{modeHealthy, http.StatusOK},
		{modeNeverHealthy, http.StatusServiceUnavailable},
		{modeSlowStart, http.StatusServiceUnavailable}, // slow is an hour
		{modeWorkloadHost, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			_, srv := newTestApp(t, tt.mode, time.Hour)
			if code, _ := request(t, http.MethodGet, srv.URL+"/healthz", ""); code != tt.want {
				t.Errorf("GET /healthz = %d, want %d", code, tt.want)
			}
			code, body := request(t, http.MethodGet, srv.URL+"/", "")
			if code != http.StatusOK || !strings.Contains(body, `"version":"v7"`) || !strings.Contains(body, `"mode":"`+tt.mode+`"`) {
				t.Errorf("GET / = %d %s", code, body)
			}
		})
	}
}

func TestSlowStartBecomesHealthy(t *testing.T) {
	_, srv := newTestApp(t, modeSlowStart, 300*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, _ := request(t, http.MethodGet, srv.URL+"/healthz", "")
		if code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d after deadline", code)
		}
		<-tick.C
	}
}

func TestDataAppendAndRead(t *testing.T) {
	a, srv := newTestApp(t, modeHealthy, 0)
	if code, body := request(t, http.MethodGet, srv.URL+"/data", ""); code != http.StatusOK || body != "" {
		t.Fatalf("empty GET /data = %d %q", code, body)
	}
	for _, line := range []string{"one\n", "two"} {
		if code, _ := request(t, http.MethodPost, srv.URL+"/data", line); code != http.StatusNoContent {
			t.Fatalf("POST /data = %d", code)
		}
	}
	if _, body := request(t, http.MethodGet, srv.URL+"/data", ""); body != "one\ntwo\n" {
		t.Errorf("GET /data = %q", body)
	}
	b, err := os.ReadFile(filepath.Join(a.cfg.dataDir, "records.log"))
	if err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("records.log = %q, %v", b, err)
	}
}

func TestProbe(t *testing.T) {
	for _, tt := range []struct {
		mode   string
		wantOK bool
	}{{modeHealthy, true}, {modeNeverHealthy, false}} {
		t.Run(tt.mode, func(t *testing.T) {
			_, srv := newTestApp(t, tt.mode, 0)
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			if err := probe(":" + port); (err == nil) != tt.wantOK {
				t.Errorf("probe = %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cfg := config{version: "v1", listen: "127.0.0.1:0", dataDir: t.TempDir(), mode: modeHealthy}
	done := make(chan error, 1)
	go func() { done <- run(ctx, discardLogger(), cfg) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	b, err := os.ReadFile(filepath.Join(cfg.dataDir, "records.log"))
	if err != nil || string(b) != "started v1\n" {
		t.Errorf("records.log = %q, %v", b, err)
	}
}

func TestLoadConfigRejectsUnknownMode(t *testing.T) {
	t.Setenv("DEMO_MODE", "bogus")
	if _, err := loadConfig(); err == nil {
		t.Fatal("loadConfig accepted an unknown mode")
	}
	t.Setenv("DEMO_MODE", "")
	t.Setenv("DEMO_SLOW", "soon")
	if _, err := loadConfig(); err == nil {
		t.Fatal("loadConfig accepted a bad DEMO_SLOW")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
