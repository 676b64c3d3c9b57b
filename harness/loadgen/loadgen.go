package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes a load.
type Config struct {
	// URL is requested with GET.
	URL string
	// Rate is requests per second.
	Rate int
	// Timeout bounds one request (default 2s); a slower answer is a failure.
	Timeout time.Duration
	// MaxInFlight bounds concurrent requests (default: Timeout's worth of
	// the rate, at least 16, so a request that would still answer within
	// its timeout is never refused for want of a slot on a slow machine);
	// a request that cannot start because of it counts as a failure.
	MaxInFlight int
	// Client sends the requests (default: a client with keep-alives off, so
	// every request is a new connection the load balancer must place).
	Client *http.Client
	// Live, when set, is updated as requests start and finish, so a caller
	// can show progress while Run is still going.
	Live *Live
	// Items switches to the write-and-verify load: each request POSTs a new
	// item {"id","name"} to URL+"items" and, once it is acknowledged with
	// 201, reads it back with GET URL+"items/"+id (a new connection, so
	// usually another replica); the request succeeds only when the read
	// answers 200 with the name written, and a re-read of an earlier
	// acknowledged write, picked at random, answers 200 with its name too.
	// Result.Acked lists every write that was acknowledged, whatever
	// happened to its reads.
	Items *Items
}

// Items configures the write-and-verify load.
type Items struct {
	// IDPrefix starts every item id (then a sequence number); make it
	// unique per run so runs against one database do not collide.
	IDPrefix string
}

// Ack is one write the service acknowledged.
type Ack struct {
	ID, Name string
	// WrittenBy is the version that acknowledged the write; ReadBy the one
	// that answered the read-back (empty when the read-back failed).
	WrittenBy, ReadBy string
}

// Live holds running totals of a load that is still going; the zero value
// is ready to use and safe for concurrent reads.
type Live struct {
	sent, ok, failed atomic.Int64
}

// Counts is a snapshot of a Live.
type Counts struct {
	Sent, OK, Failed int64
}

// Load returns the totals so far. Sent counts requests started; those still
// in flight are neither OK nor Failed yet.
func (l *Live) Load() Counts {
	return Counts{Sent: l.sent.Load(), OK: l.ok.Load(), Failed: l.failed.Load()}
}

// Result counts what happened.
type Result struct {
	Sent, OK, Failed int
	// Errors counts failures by cause (status code or error text).
	Errors map[string]int
	// Latency percentiles of successful requests.
	P50, P95, P99, Max time.Duration
	Duration           time.Duration
	// Acked is every acknowledged write of an Items load, in no order.
	Acked []Ack
	// Reads counts an Items load's correct reads by the version that wrote
	// the item and the one that read it, as "v1->v2".
	Reads map[string]int
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %.1fs (%.0f/s): %d ok, %d failed; latency p50 %v p95 %v p99 %v max %v",
		r.Sent, r.Duration.Seconds(), float64(r.Sent)/r.Duration.Seconds(), r.OK, r.Failed, r.P50, r.P95, r.P99, r.Max)
}

// Run sends requests until ctx is done, then waits for those in flight.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Rate <= 0 {
		return Result{}, errors.New("loadgen: rate must be positive")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = max(16, int(int64(cfg.Rate)*int64(cfg.Timeout)/int64(time.Second)))
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	live := cfg.Live
	if live == nil {
		live = &Live{}
	}
	var (
		mu        sync.Mutex
		res       = Result{Errors: map[string]int{}, Reads: map[string]int{}}
		latencies []time.Duration
		wg        sync.WaitGroup
		slots     = make(chan struct{}, cfg.MaxInFlight)
		seq       atomic.Uint64 // item ids of an Items load
		base      = strings.TrimSuffix(cfg.URL, "/") + "/items"
	)
	fail := func(cause string) {
		mu.Lock()
		res.Failed++
		res.Errors[cause]++
		mu.Unlock()
		live.failed.Add(1)
	}
	// send makes one request; it holds an in-flight slot.
	send := func() {
		defer func() { <-slots }()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Timeout)
		defer cancel()
		begin := time.Now()
		if cfg.Items != nil {
			ack, acked, cause := writeAndVerify(rctx, cfg.Client, base, cfg.Items.IDPrefix+strconv.FormatUint(seq.Add(1), 10))
			mu.Lock()
			var old Ack
			if n := len(res.Acked); n > 0 {
				old = res.Acked[rand.IntN(n)]
			}
			if acked {
				res.Acked = append(res.Acked, ack)
			}
			if ack.ReadBy != "" {
				res.Reads[ack.WrittenBy+"->"+ack.ReadBy]++
			}
			mu.Unlock()
			if cause != "" {
				fail(cause)
				return
			}
			if old.ID != "" {
				readBy, cause := readItem(rctx, cfg.Client, base, old)
				if cause != "" {
					fail("re-read: " + cause)
					return
				}
				mu.Lock()
				res.Reads[old.WrittenBy+"->"+readBy]++
				mu.Unlock()
			}
		} else {
			req, _ := http.NewRequestWithContext(rctx, http.MethodGet, cfg.URL, nil)
			resp, err := cfg.Client.Do(req)
			if err != nil {
				fail(errText(err))
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fail(resp.Status)
				return
			}
		}
		d := time.Since(begin)
		mu.Lock()
		res.OK++
		latencies = append(latencies, d)
		mu.Unlock()
		live.ok.Add(1)
	}
	interval := time.Second / time.Duration(cfg.Rate)
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	// A ticker drops ticks when the loop falls behind (a busy CPU), which
	// would quietly lower the rate. Each tick therefore starts every
	// request that is due by the schedule, up to maxBurst at once so a
	// stall is caught up over a few ticks instead of in one burst that
	// only the in-flight limit would see.
	const maxBurst = 4
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
		}
		due := int(time.Since(start)*time.Duration(cfg.Rate)/time.Second) - res.Sent
		for range min(due, maxBurst) {
			res.Sent++
			live.sent.Add(1)
			select {
			case slots <- struct{}{}:
			default:
				fail("too many requests in flight")
				continue
			}
			wg.Go(send)
		}
	}
	wg.Wait()
	res.Duration = time.Since(start)
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if n := len(latencies); n > 0 {
		pct := func(p float64) time.Duration { return latencies[min(n-1, int(p*float64(n)))] }
		res.P50, res.P95, res.P99, res.Max = pct(0.50), pct(0.95), pct(0.99), latencies[n-1]
	}
	return res, nil
}

// writeAndVerify POSTs the item id to base, then GETs it back. acked says
// the write was acknowledged; cause is empty when both steps succeeded and
// the read gave the name written.
func writeAndVerify(ctx context.Context, c *http.Client, base, id string) (ack Ack, acked bool, cause string) {
	ack = Ack{ID: id, Name: "item " + id}
	body, _ := json.Marshal(map[string]string{"id": ack.ID, "name": ack.Name})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	var got struct {
		ID, Name  string
		WrittenBy string `json:"written_by"`
		ReadBy    string `json:"read_by"`
	}
	if cause := doJSON(c, req, http.StatusCreated, &got); cause != "" {
		return ack, false, "write: " + cause
	}
	ack.WrittenBy = got.WrittenBy
	readBy, cause := readItem(ctx, c, base, ack)
	if cause != "" {
		return ack, true, "read back: " + cause
	}
	ack.ReadBy = readBy
	return ack, true, ""
}

// readItem GETs the item ack wrote and checks its name; it returns the
// version that answered, or the cause of a failure.
func readItem(ctx context.Context, c *http.Client, base string, ack Ack) (readBy, cause string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+url.PathEscape(ack.ID), nil)
	var got struct {
		Name   string
		ReadBy string `json:"read_by"`
	}
	if cause := doJSON(c, req, http.StatusOK, &got); cause != "" {
		return "", cause
	}
	if got.Name != ack.Name {
		return "", "wrong name"
	}
	return got.ReadBy, ""
}

// doJSON sends req and decodes a want answer into v; it returns the cause
// of a failure, or "".
func doJSON(c *http.Client, req *http.Request, want int, v any) string {
	resp, err := c.Do(req)
	if err != nil {
		return errText(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Status
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return "decode answer: " + err.Error()
	}
	return ""
}

// errText drops the method and URL a transport error repeats on every request.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
