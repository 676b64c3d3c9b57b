package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRunWiresMetricsWebhooksAndPolicies runs the auditor command against
// real NATS: an upgrade.completed event shows in /metrics and reaches the
// webhook, and the command stops cleanly when its context ends.
func TestRunWiresMetricsWebhooksAndPolicies(t *testing.T) {
	s := natstest.Start(t)
	var mu sync.Mutex
	var posted []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, r.Header.Get("Content-Type")+" "+string(b))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)

	addr := natstest.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--nats", s.Server.ClientURL(), "--store", filepath.Join(t.TempDir(), "audit.db"),
			"--http", addr, "--webhook", hook.URL, "--policy", "web:consecutive=2,action=report", "--log-level", "warn"})
	}()
	var result error
	stop := sync.OnceValue(func() bool {
		cancel()
		select {
		case result = <-done:
			return true
		case <-time.After(30 * time.Second):
			return false
		}
	})
	t.Cleanup(func() { stop() })

	e := events.MustNew(events.Source("test", ""), events.UpgradeCompleted{Release: "2025.1"}, events.WithUpgrade("u1"))
	natstest.Publish(t, s.JS, e)
	natstest.Eventually(t, 20*time.Second, "/metrics to show the completed upgrade", func() bool {
		return strings.Contains(get("http://"+addr+"/metrics"), `cutover_upgrades{state="completed"} 1`)
	})
	body := get("http://" + addr + "/metrics")
	for _, want := range []string{`cutover_consumer_pending_messages{consumer="auditor"}`, "cutover_verdict_windows", `cutover_webhook_events_total{result="delivered"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	natstest.Eventually(t, 20*time.Second, "the webhook to receive the event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posted) == 1 && strings.HasPrefix(posted[0], "application/cloudevents+json ") && strings.Contains(posted[0], e.ID())
	})
	if !stop() {
		t.Fatal("run did not return after its context ended")
	}
	if result != nil {
		t.Errorf("run returned %v after its context ended, want nil", result)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad policy", []string{"--policy", "web:ratio=2"}, "ratio=2: must be in (0, 1]"},
		{"bad webhook type", []string{"--webhook", "http://127.0.0.1:1", "--webhook-types", "dev.cutover.nope"}, "not an event type"},
		{"missing policies file", []string{"--policies", "/nonexistent/policies.yaml"}, "read --policies file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := natstest.Start(t)
			args := append([]string{"--nats", s.Server.ClientURL(), "--store", filepath.Join(t.TempDir(), "a.db")}, tt.args...)
			err := run(t.Context(), args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want an error saying %q", tt.args, err, tt.want)
			}
		})
	}
}

// TestRunWithPostgresStore runs the command with --store postgres://… on a
// throwaway database and reads the stored event back through the API.
func TestRunWithPostgresStore(t *testing.T) {
	admin := os.Getenv("CUTOVER_TEST_POSTGRES")
	if admin == "" {
		t.Skip("PostgreSQL test skipped: set CUTOVER_TEST_POSTGRES to a server URL whose user may create databases, e.g. postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable")
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	name := fmt.Sprintf("cutover_audit_cmd_test_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name

	s := natstest.Start(t)
	addr := natstest.FreeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--nats", s.Server.ClientURL(), "--store", u.String(), "--http", addr, "--log-level", "warn"})
	}()
	e := events.MustNew(events.Source("test", ""), events.UpgradeCompleted{Release: "2025.1"}, events.WithUpgrade("u1"))
	natstest.Publish(t, s.JS, e)
	natstest.Eventually(t, 20*time.Second, "the event stored in PostgreSQL and served", func() bool {
		return strings.Contains(get("http://"+addr+"/api/upgrades/u1/events"), e.ID())
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
