package haproxy

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Server states accepted by SetState.
const (
	StateReady = "ready"
	StateDrain = "drain"
	StateMaint = "maint"
)

// Client talks to one HAProxy's runtime API over its Unix socket, one
// command per connection (the API's non-interactive mode).
type Client struct {
	// Socket is the path of the stats socket ("stats socket PATH level admin").
	Socket string
}

// Command sends one runtime API command and returns the answer.
func (c *Client) Command(ctx context.Context, cmd string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API at %s: %w (is HAProxy running with 'stats socket %s level admin'?)", c.Socket, err, c.Socket)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy command %q: %w", cmd, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("haproxy command %q: %w", cmd, err)
	}
	return string(out), nil
}

// SetState sets a backend server's administrative state: ready, drain or maint.
func (c *Client) SetState(ctx context.Context, backend, server, state string) error {
	switch state {
	case StateReady, StateDrain, StateMaint:
	default:
		return fmt.Errorf("set %s/%s state %q: want ready, drain or maint", backend, server, state)
	}
	out, err := c.Command(ctx, fmt.Sprintf("set server %s/%s state %s", backend, server, state))
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(out); msg != "" {
		return fmt.Errorf("set %s/%s state %s: haproxy says %q", backend, server, state, msg)
	}
	return nil
}

// ServerStat is one server's line of "show stat".
type ServerStat struct {
	Backend, Server string
	// Status is UP, DOWN, DRAIN, MAINT, ... as HAProxy reports it.
	Status string
	// Sessions is the number of current sessions (scur).
	Sessions int
	// Total is the number of sessions served since start (stot).
	Total int
}

// Stats returns every server of a backend.
func (c *Client) Stats(ctx context.Context, backend string) ([]ServerStat, error) {
	out, err := c.Command(ctx, "show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(bufio.NewReader(strings.NewReader(strings.TrimPrefix(out, "# "))))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("read haproxy stats: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, need := range []string{"pxname", "svname", "scur", "stot", "status"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("read haproxy stats: no %s column", need)
		}
	}
	var out2 []ServerStat
	for _, row := range rows[1:] {
		if len(row) <= col["status"] || row[col["pxname"]] != backend {
			continue
		}
		sv := row[col["svname"]]
		if sv == "FRONTEND" || sv == "BACKEND" {
			continue
		}
		cur, _ := strconv.Atoi(row[col["scur"]])
		tot, _ := strconv.Atoi(row[col["stot"]])
		out2 = append(out2, ServerStat{Backend: backend, Server: sv, Status: row[col["status"]], Sessions: cur, Total: tot})
	}
	if len(out2) == 0 {
		return nil, fmt.Errorf("haproxy has no backend %q with servers; check the backend name", backend)
	}
	return out2, nil
}

// Stat returns one server's stats.
func (c *Client) Stat(ctx context.Context, backend, server string) (ServerStat, error) {
	all, err := c.Stats(ctx, backend)
	if err != nil {
		return ServerStat{}, err
	}
	for _, s := range all {
		if s.Server == server {
			return s, nil
		}
	}
	return ServerStat{}, fmt.Errorf("haproxy backend %s has no server %q", backend, server)
}

// ErrSessionsRemain says a drain timed out with sessions still open.
var ErrSessionsRemain = errors.New("sessions remain after drain timeout")

// Drain takes a server out of rotation without cutting its sessions: state
// drain (no new sessions), wait until its current sessions reach zero or
// timeout, then maint. It returns the sessions left when it gave up,
// wrapped in ErrSessionsRemain; the server is in maint either way.
func (c *Client) Drain(ctx context.Context, backend, server string, timeout time.Duration) error {
	if err := c.SetState(ctx, backend, server, StateDrain); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last ServerStat
	for {
		s, err := c.Stat(ctx, backend, server)
		if err != nil {
			return err
		}
		last = s
		if s.Sessions == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := c.SetState(ctx, backend, server, StateMaint); err != nil {
		return err
	}
	if last.Sessions > 0 {
		return fmt.Errorf("drain %s/%s: %d %w (%v)", backend, server, last.Sessions, ErrSessionsRemain, timeout)
	}
	return nil
}
