package haproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/lb-agent/haproxy"
)

func startHAProxy(t *testing.T, servers map[string]string) (*haproxy.Process, string) {
	t.Helper()
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed: run scripts/install-haproxy.sh (make test does)")
	}
	front := natstest.FreeAddr(t)
	p, err := haproxy.Run(t.Context(), t.TempDir(), haproxy.Backend{Name: "web", Listen: front, Servers: servers, HealthPath: "/healthz"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, "http://" + front
}

// backend serves its name; requests to /slow wait until release is called
// (or the test ends).
func backend(t *testing.T, name string) (addr string, release func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-hold
		}
		fmt.Fprint(w, name)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs before srv.Close, which waits for open requests
	return strings.TrimPrefix(srv.URL, "http://"), release
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestDrainTakesServerOutOnlyAfterItsSessionsEnd(t *testing.T) {
	a, release := backend(t, "a")
	b, _ := backend(t, "b")
	p, url := startHAProxy(t, map[string]string{"a": a, "b": b})
	ctx := t.Context()
	natstest.Eventually(t, 10*time.Second, "both servers up", func() bool {
		st, err := p.Stats(ctx, "web")
		return err == nil && len(st) == 2 && st[0].Status == "UP" && st[1].Status == "UP"
	})
	// Disable b so the slow request lands on a, then restore b.
	if err := p.SetState(ctx, "web", "b", haproxy.StateMaint); err != nil {
		t.Fatal(err)
	}
	slow := make(chan string, 1)
	go func() { slow <- get(t, url+"/slow") }()
	natstest.Eventually(t, 10*time.Second, "a session open on a", func() bool { s, _ := p.Stat(ctx, "web", "a"); return s.Sessions == 1 })
	if err := p.SetState(ctx, "web", "b", haproxy.StateReady); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error, 1)
	go func() { drained <- p.Drain(ctx, "web", "a", 10*time.Second) }()
	// b leaves maintenance through its health check, and Drain sets a's
	// state in its own goroutine: wait for both before sending requests.
	natstest.Eventually(t, 10*time.Second, "a draining and b up", func() bool {
		sa, _ := p.Stat(ctx, "web", "a")
		sb, _ := p.Stat(ctx, "web", "b")
		return sa.Status == "DRAIN" && sb.Status == "UP"
	})
	// While a drains, new requests all go to b and the open one is not cut.
	for range 5 {
		if got := get(t, url+"/"); got != "b" {
			t.Fatalf("a draining server got a new request (answer %q)", got)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("drain returned (%v) while a session was still open", err)
	default:
	}
	release()
	if got := <-slow; got != "a" {
		t.Errorf("the in-flight request was answered by %q, want a", got)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if s, _ := p.Stat(ctx, "web", "a"); s.Status != "MAINT" {
		t.Errorf("after drain a is %s, want MAINT", s.Status)
	}
	if err := p.SetState(ctx, "web", "a", haproxy.StateReady); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "a back in rotation", func() bool { s, _ := p.Stat(ctx, "web", "a"); return s.Status == "UP" })
}

func TestDrainTimeoutSaysSessionsRemain(t *testing.T) {
	a, _ := backend(t, "a")
	p, url := startHAProxy(t, map[string]string{"a": a})
	ctx := t.Context()
	natstest.Eventually(t, 10*time.Second, "a up", func() bool { s, err := p.Stat(ctx, "web", "a"); return err == nil && s.Status == "UP" })
	go func() {
		resp, err := http.Get(url + "/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	natstest.Eventually(t, 10*time.Second, "a session open", func() bool { s, _ := p.Stat(ctx, "web", "a"); return s.Sessions == 1 })
	err := p.Drain(ctx, "web", "a", 200*time.Millisecond)
	if !errors.Is(err, haproxy.ErrSessionsRemain) {
		t.Fatalf("drain = %v, want ErrSessionsRemain", err)
	}
}

func TestClearErrors(t *testing.T) {
	a, _ := backend(t, "a")
	p, _ := startHAProxy(t, map[string]string{"a": a})
	ctx := t.Context()
	if err := p.SetState(ctx, "web", "nope", haproxy.StateDrain); err == nil || !strings.Contains(err.Error(), "haproxy says") {
		t.Errorf("unknown server: %v", err)
	}
	if _, err := p.Stats(ctx, "nobackend"); err == nil || !strings.Contains(err.Error(), "nobackend") {
		t.Errorf("unknown backend: %v", err)
	}
	if err := p.SetState(ctx, "web", "a", "sideways"); err == nil {
		t.Error("a bad state must be refused")
	}
	c := &haproxy.Client{Socket: t.TempDir() + "/none.sock"}
	if _, err := c.Command(context.Background(), "show info"); err == nil || !strings.Contains(err.Error(), "is HAProxy running") {
		t.Errorf("no socket: %v", err)
	}
}

// TestRetryRedispatchesAwayFromADeadServer sends requests to a backend with
// one live server and one whose port refuses connections, without health
// checks so HAProxy keeps choosing both: by default the refused requests are
// retried on the live server; with NoRetry they fail.
func TestRetryRedispatchesAwayFromADeadServer(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed: run scripts/install-haproxy.sh (make test does)")
	}
	live, _ := backend(t, "live")
	dead := natstest.FreeAddr(t) // nothing listens there
	for _, tc := range []struct {
		name       string
		noRetry    bool
		wantFailed bool
	}{
		{"retries and redispatch (default)", false, false},
		{"no retry", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := natstest.FreeAddr(t)
			p, err := haproxy.Run(t.Context(), t.TempDir(), haproxy.Backend{Name: "web", Listen: front, NoRetry: tc.noRetry,
				Servers: map[string]string{"live": live, "dead": dead}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			failed := 0
			for range 10 {
				resp, err := http.Get("http://" + front + "/")
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed++
				}
			}
			if (failed > 0) != tc.wantFailed {
				t.Errorf("%d of 10 requests failed; want failures: %v", failed, tc.wantFailed)
			}
		})
	}
}
