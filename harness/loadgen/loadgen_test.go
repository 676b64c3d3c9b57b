package loadgen_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/harness/loadgen"
)

// failingEvery serves "ok", and status to every nth request, until the
// end of the test.
func failingEvery(t *testing.T, nth int64, status int) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%nth == 0 {
			http.Error(w, "boom", status)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCountsSuccessesAndFailures(t *testing.T) {
	srv := failingEvery(t, 10, http.StatusServiceUnavailable)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{URL: srv.URL, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 50 || res.OK+res.Failed != res.Sent {
		t.Fatalf("result %v: sent must equal ok+failed and be substantial", res)
	}
	if res.Failed == 0 || res.Errors["503 Service Unavailable"] != res.Failed {
		t.Errorf("failures not counted by cause: %v %v", res, res.Errors)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("percentiles out of order: %v", res)
	}
}

func TestARefusedConnectionIsAFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens any more
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	res, _ := loadgen.Run(ctx, loadgen.Config{URL: url, Rate: 100})
	if res.Sent == 0 || res.Failed != res.Sent || res.OK != 0 {
		t.Errorf("result %v: every request to a closed port must fail", res)
	}
}

// TestLiveTotalsMatchTheResult checks that the running totals a caller
// polls during the load end equal to the final result.
func TestLiveTotalsMatchTheResult(t *testing.T) {
	srv := failingEvery(t, 4, http.StatusInternalServerError)
	var live loadgen.Live
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan loadgen.Result, 1)
	go func() {
		res, _ := loadgen.Run(ctx, loadgen.Config{URL: srv.URL, Rate: 200, Live: &live})
		done <- res
	}()
	deadline := time.Now().Add(10 * time.Second)
	for live.Load().OK < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("live totals did not move: %+v", live.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	res := <-done
	got := live.Load()
	if got.Sent != int64(res.Sent) || got.OK != int64(res.OK) || got.Failed != int64(res.Failed) || got.Failed == 0 {
		t.Errorf("live %+v, result %v: want equal totals with some failures", got, res)
	}
}

// itemServer is an items API in memory; lose and rename break a share of
// the writes the way a wrong schema would.
type itemServer struct {
	mu           sync.Mutex
	items        map[string]string
	n            int
	lose, rename int // every n-th write is acknowledged but lost, or renamed
}

func (s *itemServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/items":
		var it struct{ ID, Name string }
		if err := json.NewDecoder(r.Body).Decode(&it); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.n++
		switch {
		case s.lose > 0 && s.n%s.lose == 0:
		case s.rename > 0 && s.n%s.rename == 0:
			s.items[it.ID] = "renamed"
		default:
			s.items[it.ID] = it.Name
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]string{"id": it.ID, "name": it.Name, "written_by": "v9"})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/items/"):
		id := strings.TrimPrefix(r.URL.Path, "/items/")
		name, ok := s.items[id]
		if !ok {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"id": id, "name": name, "written_by": "v9", "read_by": "v8"})
	default:
		http.NotFound(w, r)
	}
}

// TestItemsLoadVerifiesEveryWrite runs the write-and-verify load against
// an items API that keeps every write, loses some, or changes some: lost or
// changed writes are failures, and every acknowledged write is listed.
func TestItemsLoadVerifiesEveryWrite(t *testing.T) {
	tests := []struct {
		name         string
		lose, rename int
		cause        string
	}{
		{"keeps every write", 0, 0, ""},
		{"loses every 5th write", 5, 0, "404 Not Found"},
		{"renames every 7th write", 0, 7, "wrong name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&itemServer{items: map[string]string{}, lose: tt.lose, rename: tt.rename})
			defer srv.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			res, err := loadgen.Run(ctx, loadgen.Config{URL: srv.URL + "/", Rate: 200, Items: &loadgen.Items{IDPrefix: "t-"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent < 20 || len(res.Acked) != res.Sent {
				t.Fatalf("result %v with %d acked: want every one of a substantial load acknowledged", res, len(res.Acked))
			}
			seen := map[string]bool{}
			for _, a := range res.Acked {
				if seen[a.ID] || !strings.HasPrefix(a.ID, "t-") || a.WrittenBy != "v9" {
					t.Fatalf("ack %+v: want unique ids with the prefix, written by v9", a)
				}
				seen[a.ID] = true
			}
			if tt.cause == "" {
				// Each OK request read its own write and, but for those
				// that started before any write was acknowledged, an
				// earlier one.
				if r := res.Reads["v9->v8"]; res.Failed != 0 || res.OK != res.Sent || r <= res.OK || r > 2*res.OK {
					t.Errorf("result %v (causes %v, reads %v): want no failure and two reads per request", res, res.Errors, res.Reads)
				}
				return
			}
			want := map[string]bool{"read back: " + tt.cause: true, "re-read: " + tt.cause: true}
			for cause := range res.Errors {
				if !want[cause] {
					t.Errorf("failure cause %q; want only %v", cause, want)
				}
			}
			if res.Failed == 0 || res.Errors["read back: "+tt.cause] == 0 {
				t.Errorf("result %v (causes %v): want read-back failures %q", res, res.Errors, tt.cause)
			}
		})
	}
}
