package auditor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
)

func TestHubDropsSlowSubscribers(t *testing.T) {
	hub := auditor.NewHub(2, 2)
	fast, slow, other := hub.Subscribe(""), hub.Subscribe("u1"), hub.Subscribe("")
	if other != nil {
		t.Fatal("a third subscriber was accepted over the cap of 2")
	}
	for i := range 3 {
		hub.Publish(auditor.Record{ID: string(rune('a' + i)), UpgradeID: "u1"})
		<-fast.C // the fast one reads
	}
	if _, ok := <-slow.C; !ok {
		t.Fatal("the slow subscriber lost its buffered records")
	}
	<-slow.C
	if _, ok := <-slow.C; ok {
		t.Fatal("the slow subscriber was not dropped when its buffer overflowed")
	}
	if hub.Dropped() != 1 || hub.Subscribers() != 1 {
		t.Errorf("dropped %d, subscribers %d; want 1 and 1", hub.Dropped(), hub.Subscribers())
	}
	fast.Cancel()
	fast.Cancel() // twice is fine
}

func TestDashboardPagesAndStream(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	hub := auditor.NewHub(0, 0)
	evs := upgradeEvents("u1")
	for _, e := range evs[:2] {
		r, _ := auditor.RecordOf(e, e.Time())
		if _, err := store.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(auditor.NewDashboard(store, hub, testLogger(t), map[string]http.Handler{
		"GET /extra": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("mounted")) }),
	}))
	t.Cleanup(srv.Close)

	for _, tt := range []struct{ path, want, ctype string }{
		{"/", `href="/upgrades/u1"`, "text/html"},
		{"/upgrades/u1", `data-upgrade="u1"`, "text/html"},
		{"/upgrades/not-yet", `data-upgrade="not-yet"`, "text/html"},
		{"/static/app.js", "EventSource", "text/javascript"},
		{"/api/upgrades", `"id": "u1"`, "application/json"},
		{"/extra", "mounted", ""},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
			if resp.StatusCode != 200 || !strings.Contains(b.String(), tt.want) || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
				t.Errorf("GET %s: %d %s, body has %q: %v", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.want, strings.Contains(b.String(), tt.want))
			}
		})
	}

	t.Run("stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/stream?upgrade=u1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		eventually(t, 5*time.Second, "the stream subscriber", func() bool { return hub.Subscribers() == 1 })
		other, _ := auditor.RecordOf(upgradeEvents("u2")[0], time.Now())
		mine, _ := auditor.RecordOf(evs[2], time.Now())
		hub.Publish(other) // another upgrade: filtered out
		hub.Publish(mine)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var got auditor.Record
			if err := json.Unmarshal([]byte(data), &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != mine.ID || got.Type != events.TypeContainerReplaced {
				t.Fatalf("first streamed record = %s %s, want %s (the other upgrade's filtered out)", got.ID, got.Type, mine.ID)
			}
			return
		}
		t.Fatalf("stream ended: %v", sc.Err())
	})
}
