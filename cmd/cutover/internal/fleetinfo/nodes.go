package fleetinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// nodeSilentAfter is how long a node-updater may go without refreshing its
// inventory (every 10s) before cutover nodes calls it silent; the bucket
// drops it as lost after 30s.
const nodeSilentAfter = 25 * time.Second

// NodeRow is one node-updater in cutover nodes -o json.
type NodeRow struct {
	Node         string                     `json:"node"`
	Alive        bool                       `json:"alive"`
	AgentVersion string                     `json:"agent_version"`
	Runtime      string                     `json:"runtime"`
	UpdatedAt    time.Time                  `json:"updated_at"`
	LastSeen     time.Time                  `json:"last_seen,omitzero"`
	Images       []string                   `json:"images"`
	Containers   []events.ObservedContainer `json:"containers"`
}

// Nodes lists every node-updater that reports to the cutover-nodes bucket,
// as text or json.
func Nodes(ctx context.Context, js jetstream.JetStream, w io.Writer, format string) error {
	nodes, err := planner.Fleet(ctx, js)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]NodeRow, 0, len(nodes))
	for _, n := range nodes {
		r := NodeRow{Node: n.Node, Alive: now.Sub(n.UpdatedAt) < nodeSilentAfter, AgentVersion: n.AgentVersion, Runtime: n.Runtime,
			UpdatedAt: n.UpdatedAt, Containers: n.Containers, LastSeen: lastHeard(ctx, js, n.Node)}
		for _, c := range n.Containers {
			if !slices.Contains(r.Images, c.Image) {
				r.Images = append(r.Images, c.Image)
			}
		}
		slices.Sort(r.Images)
		if r.Containers == nil {
			r.Containers = []events.ObservedContainer{}
		}
		if r.Images == nil {
			r.Images = []string{}
		}
		rows = append(rows, r)
	}
	return render.Rows(w, format, rows, "no node-updater reports on this NATS", "NODE\tSTATE\tVERSION\tRUNTIME\tCONTAINERS\tIMAGES\tINVENTORY\tLAST EVENT", func(r NodeRow) string {
		state := "alive"
		if !r.Alive {
			state = "silent"
		}
		last := "none kept"
		if !r.LastSeen.IsZero() {
			last = render.Ago(r.LastSeen, now)
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s", r.Node, state, r.AgentVersion, r.Runtime, len(r.Containers),
			strings.Join(r.Images, ", "), render.Ago(r.UpdatedAt, now), last)
	})
}

// lastHeard is the time of a node-updater's newest event in the stream, or
// zero when the stream keeps none.
func lastHeard(ctx context.Context, js jetstream.JetStream, node string) time.Time {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return time.Time{}
	}
	var last time.Time
	for _, subj := range []string{events.NodeStatusSubject(node), events.NodeHeartbeatSubject(node)} {
		if msg, err := st.GetLastMsgForSubject(ctx, subj); err == nil && msg.Time.After(last) {
			last = msg.Time
		}
	}
	return last
}

// LockRow is one scope lock in cutover locks -o json.
type LockRow struct {
	Scope   string    `json:"scope"`
	Upgrade string    `json:"upgrade"`
	Phase   string    `json:"phase"`
	Since   time.Time `json:"since"`
	Live    bool      `json:"live"`
}

// lockPrefix is the prefix of the planner's scope lock keys (upgrade.<scope>).
const lockPrefix = "upgrade."

// Locks lists the scope locks as text or json or, with release, deletes
// that scope's lock when it is stale.
func Locks(ctx context.Context, js jetstream.JetStream, w io.Writer, release, format string) error {
	kv, err := js.KeyValue(ctx, events.BucketLocks)
	if err != nil {
		return fmt.Errorf("open bucket %s: %w (is cutover dev or a planner running on this NATS?)", events.BucketLocks, err)
	}
	rows, entries, err := readLocks(ctx, js, kv)
	if err != nil {
		return err
	}
	if release != "" {
		for i, r := range rows {
			if r.Scope != release {
				continue
			}
			if r.Live {
				return fmt.Errorf("lock of scope %s is live: upgrade %s is %s; end it first (cutover abort %s or cutover rollback %s)", r.Scope, r.Upgrade, r.Phase, r.Upgrade, r.Upgrade)
			}
			// Delete only the revision read: a planner taking the lock
			// meanwhile keeps it.
			if err := kv.Delete(ctx, entries[i].Key(), jetstream.LastRevision(entries[i].Revision())); err != nil {
				return fmt.Errorf("release lock of scope %s: %w (it changed since it was read; run cutover locks again)", r.Scope, err)
			}
			fmt.Fprintf(w, "released the lock of scope %s, held by upgrade %s (%s) since %s\n", r.Scope, r.Upgrade, r.Phase, render.Ago(r.Since, time.Now()))
			return nil
		}
		return fmt.Errorf("no lock for scope %q; cutover locks lists them", release)
	}
	return render.Rows(w, format, rows, "no locks: no upgrade is running", "SCOPE\tUPGRADE\tPHASE\tHELD FOR\tSTATE", func(r LockRow) string {
		state := "live"
		if !r.Live {
			state = "stale: its upgrade " + map[bool]string{true: "is unknown", false: "ended"}[r.Phase == "unknown"] + "; cutover locks --release " + r.Scope + " --force"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Scope, r.Upgrade, r.Phase, render.Duration(time.Since(r.Since)), state)
	})
}

// readLocks reads every scope lock and the phase of its holder.
func readLocks(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) ([]LockRow, []jetstream.KeyValueEntry, error) {
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list locks: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		if strings.HasPrefix(k, lockPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	rows := []LockRow{}
	var entries []jetstream.KeyValueEntry
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if events.IsNotFound(err) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read lock %s: %w", k, err)
		}
		r := LockRow{Scope: strings.TrimPrefix(k, lockPrefix), Upgrade: string(e.Value()), Since: e.Created(), Phase: "unknown"}
		u, err := planner.LoadUpgrade(ctx, js, r.Upgrade)
		switch {
		case err == nil:
			r.Phase, r.Live = u.Phase, !u.Final()
		case !errors.Is(err, planner.ErrNoUpgrade):
			return nil, nil, fmt.Errorf("read upgrade %s holding lock %s: %w", r.Upgrade, k, err)
		}
		rows = append(rows, r)
		entries = append(entries, e)
	}
	return rows, entries, nil
}
