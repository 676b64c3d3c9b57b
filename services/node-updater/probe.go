package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// Probe defaults, used when a Probe leaves them zero.
const (
	DefaultProbeTimeout  = 2 * time.Second
	DefaultProbeInterval = 500 * time.Millisecond
)

// probeClient runs HTTP probes. Keep-alives are off: each probe checks that
// a new connection is accepted, and no idle connection outlives the gate.
var probeClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	// A redirect answer already proves the server is up.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func probeInterval(p events.Probe) time.Duration {
	if p.IntervalMs > 0 {
		return time.Duration(p.IntervalMs) * time.Millisecond
	}
	return DefaultProbeInterval
}

// runProbe runs one probe against c: an HTTP GET or a TCP connect to the
// container's address on its first network, or a command run inside it. The
// updater must reach the container's network, which holds when it runs on
// the host of the engine it drives.
func (u *Updater) runProbe(ctx context.Context, c Container, p events.Probe) error {
	timeout := DefaultProbeTimeout
	if p.TimeoutMs > 0 {
		timeout = time.Duration(p.TimeoutMs) * time.Millisecond
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch p.Type {
	case events.ProbeHTTP, events.ProbeTCP:
		if c.IPAddress == "" {
			return errors.New("the container has no IP address to probe (host or none networking?); use an exec probe")
		}
		if p.Port <= 0 {
			return fmt.Errorf("%s probe names no port", p.Type)
		}
		addr := net.JoinHostPort(c.IPAddress, strconv.Itoa(p.Port))
		if p.Type == events.ProbeTCP {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return fmt.Errorf("connect %s: %w", addr, timedOut(ctx, parent, timeout, err))
			}
			return conn.Close()
		}
		path := p.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		url := "http://" + addr + path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("build probe request %s: %w", url, err)
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, timedOut(ctx, parent, timeout, err))
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		_ = resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	case events.ProbeExec:
		if len(p.Command) == 0 {
			return errors.New("exec probe names no command")
		}
		code, out, err := u.rt.Exec(ctx, c.ID, p.Command)
		if err != nil {
			return fmt.Errorf("exec %q: %w", strings.Join(p.Command, " "), timedOut(ctx, parent, timeout, err))
		}
		if code != 0 {
			return fmt.Errorf("exec %q exited with %d%s", strings.Join(p.Command, " "), code, outputSuffix(strings.TrimSpace(out)))
		}
		return nil
	default:
		return fmt.Errorf("unknown probe type %q; use http, tcp or exec", p.Type)
	}
}

// timedOut says so when err came from the probe's own timeout (ctx ended,
// parent did not): "context deadline exceeded" alone does not tell the
// probe's timeout from the health gate's.
func timedOut(ctx, parent context.Context, timeout time.Duration, err error) error {
	if ctx.Err() != nil && parent.Err() == nil {
		return fmt.Errorf("no answer within the probe's timeout of %s (raise the probe's timeoutMs if the check is slow): %w", timeout, err)
	}
	return err
}
