package migrator_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/migrator"
)

// TestAllowList: a migrator with an allow-list migrates the location it is
// configured with under the request's database_id, never the location the
// request carries, and rejects a request naming an unknown id, none, or
// another driver, without touching any database.
func TestAllowList(t *testing.T) {
	allowed, bait := seed(t), seed(t)
	h := start(t, migrator.Config{Databases: map[string]migrator.AllowedDatabase{"app": {Driver: "sqlite", Location: allowed}}})
	var mu sync.Mutex
	rejected := map[string]events.EventRejected{}
	sub, err := h.srv.Conn.Subscribe(events.SubjectRejected, func(m *nats.Msg) {
		if e, err := events.Decode(m.Header, m.Data); err == nil {
			r, _ := events.DataAs[events.EventRejected](e)
			mu.Lock()
			rejected[r.EventID] = r
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	tests := []struct {
		name, id, driver string
		want             string
	}{
		{"unknown id", "other", "sqlite", `database_id "other" is not one of app`},
		{"no id", "", "sqlite", "names no database_id"},
		{"other driver", "app", "postgres", "is a sqlite database here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := h.request(events.MigrationRequested{Service: "app", Driver: tt.driver, Database: bait, DatabaseID: tt.id, Source: "testdata/ok"})
			var r events.EventRejected
			eventually(t, 10*time.Second, "a rejection", func() bool {
				mu.Lock()
				defer mu.Unlock()
				var ok bool
				r, ok = rejected[req.ID()]
				return ok
			})
			if r.Consumer != migrator.Durable || !strings.Contains(r.Reason, tt.want) || !strings.Contains(r.Reason, "allow-list") {
				t.Errorf("rejection = %+v, want a reason saying %q", r, tt.want)
			}
			if tt.driver != "sqlite" && !strings.Contains(r.Reason, "give driver sqlite (cutover db: --driver sqlite)") {
				t.Errorf("rejection %q does not say which driver to give", r.Reason)
			}
			if got := h.answers(req); len(got) != 0 {
				t.Errorf("a refused request was answered %v", got)
			}
		})
	}

	// The request names the bait database; the allow-list's is migrated.
	req := h.request(events.MigrationRequested{Service: "app", Driver: "sqlite", Database: bait, DatabaseID: "app", Source: "testdata/ok"})
	fin, _ := h.final(req)
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	if done := as[events.MigrationCompleted](t, fin); done.Database != allowed {
		t.Errorf("completed names %s, want the allow-listed %s", done.Database, allowed)
	}
	if v, _, _, _ := state(t, allowed); v != 4 {
		t.Errorf("allow-listed database at version %d, want 4", v)
	}
	if v, _, _, _ := state(t, bait); v != 1 {
		t.Errorf("the request's own location was migrated to version %d; it must stay at 1", v)
	}
}
