package loadgen_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/lb-agent/loadgen"
)

func TestCountsSuccessesAndFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%10 == 0 {
			http.Error(w, "boom", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
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
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
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
