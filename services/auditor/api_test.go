package auditor_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
)

func TestAPI(t *testing.T) {
	store := openStore(t, filepath.Join(t.TempDir(), "audit.db"))
	evs := upgradeEvents("u1")
	for _, e := range evs {
		r, err := auditor.RecordOf(e, e.Time())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(auditor.NewAPI(store, testLogger(t)))
	t.Cleanup(srv.Close)

	get := func(t *testing.T, path string, wantStatus int, into any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, wantStatus)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: body does not decode: %v", path, err)
		}
	}

	t.Run("list", func(t *testing.T) {
		var list []auditor.UpgradeSummary
		get(t, "/api/upgrades", http.StatusOK, &list)
		if len(list) != 1 || list[0].ID != "u1" || list[0].Release != "2025.1" || list[0].State != auditor.StatePlanned || list[0].Events != len(evs) {
			t.Errorf("list = %+v, want u1, release 2025.1, planned, %d events", list, len(evs))
		}
	})
	t.Run("one upgrade", func(t *testing.T) {
		var d auditor.UpgradeDetail
		get(t, "/api/upgrades/u1", http.StatusOK, &d)
		if d.Upgrade.ID != "u1" || len(d.Events) != len(evs) || d.Events[0].ID != evs[0].ID() || d.Events[0].Type != events.TypeUpgradeRequested {
			t.Errorf("detail = %+v, want u1 with its %d events, the request first", d, len(evs))
		}
	})
	t.Run("raw events", func(t *testing.T) {
		var raw []json.RawMessage
		get(t, "/api/upgrades/u1/events", http.StatusOK, &raw)
		if len(raw) != len(evs) {
			t.Fatalf("got %d events, want %d", len(raw), len(evs))
		}
		for i, r := range raw {
			e, err := events.Decode(nil, r)
			if err != nil {
				t.Fatalf("event %d is not a valid cutover CloudEvent: %v\n%s", i, err, r)
			}
			if e.ID() != evs[i].ID() {
				t.Errorf("event %d id %s, want %s (time order)", i, e.ID(), evs[i].ID())
			}
		}
	})
	for _, path := range []string{"/api/upgrades/nope", "/api/upgrades/nope/events"} {
		t.Run("unknown "+path, func(t *testing.T) {
			var body struct{ Error string }
			get(t, path, http.StatusNotFound, &body)
			if !strings.Contains(body.Error, `"nope"`) {
				t.Errorf("error %q does not name the id", body.Error)
			}
		})
	}
	t.Run("method not allowed", func(t *testing.T) {
		resp, err := http.Post(srv.URL+"/api/upgrades", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /api/upgrades: status %d, want 405", resp.StatusCode)
		}
	})
}
