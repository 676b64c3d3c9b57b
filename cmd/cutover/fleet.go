package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// nodeSilentAfter is how long a node-updater may go without refreshing its
// inventory (every 10s) before cutover nodes calls it silent; the bucket
// drops it as lost after 30s.
const nodeSilentAfter = 25 * time.Second

// nodeRow is one node-updater in cutover nodes -o json.
type nodeRow struct {
	Node         string                     `json:"node"`
	Alive        bool                       `json:"alive"`
	AgentVersion string                     `json:"agent_version"`
	Runtime      string                     `json:"runtime"`
	UpdatedAt    time.Time                  `json:"updated_at"`
	LastSeen     time.Time                  `json:"last_seen,omitzero"`
	Images       []string                   `json:"images"`
	Containers   []events.ObservedContainer `json:"containers"`
}

func newNodesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "the node-updaters: alive, version, containers, images, last heard from",
		Long: `List every node-updater that reports to this NATS (the cutover-nodes
bucket): whether it is alive (refreshed its inventory in the last 25s), its
version and runtime, the containers it owns and the images they run, and
when it was last heard from (its last event). A node-updater silent for 30s
drops out of the bucket: the planner counts its node as lost.`,
		Example: "  cutover nodes\n  cutover nodes -o json | jq '.[] | select(.alive | not) | .node'",
		Args:    noArgs,
	}
	output := outputFlag(cmd, "text", "json")
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		fleet, err := planner.Fleet(ctx, js)
		if err != nil {
			return err
		}
		now := time.Now()
		rows := make([]nodeRow, 0, len(fleet))
		for _, n := range fleet {
			r := nodeRow{Node: n.Node, Alive: now.Sub(n.UpdatedAt) < nodeSilentAfter, AgentVersion: n.AgentVersion, Runtime: n.Runtime,
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
		w := cmd.OutOrStdout()
		if output.value == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "no node-updater reports on this NATS")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tSTATE\tVERSION\tRUNTIME\tCONTAINERS\tIMAGES\tINVENTORY\tLAST EVENT")
		for _, r := range rows {
			state := "alive"
			if !r.Alive {
				state = "silent"
			}
			last := "none kept"
			if !r.LastSeen.IsZero() {
				last = render.Ago(r.LastSeen, now)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Node, state, r.AgentVersion, r.Runtime, len(r.Containers),
				strings.Join(r.Images, ", "), render.Ago(r.UpdatedAt, now), last)
		}
		return tw.Flush()
	}
	return cmd
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

// lockRow is one scope lock in cutover locks -o json.
type lockRow struct {
	Scope   string    `json:"scope"`
	Upgrade string    `json:"upgrade"`
	Phase   string    `json:"phase"`
	Since   time.Time `json:"since"`
	Live    bool      `json:"live"`
}

// lockPrefix is the prefix of the planner's scope lock keys (upgrade.<scope>).
const lockPrefix = "upgrade."

func newLocksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "locks [--release SCOPE --force]",
		Short: "the scope locks: which upgrade holds each and since when; release a stale one",
		Long: `One upgrade runs per scope at a time: the planner holds the scope's lock
from the request until the upgrade ends (a paused upgrade keeps it). List
the locks, the upgrade holding each, its phase and the lock's age.

--release SCOPE --force deletes a stale lock: one whose upgrade finished or
is unknown to the planner. A live lock (its upgrade running, paused or
rolling back) is never released: finish that upgrade first (cutover abort,
cutover rollback).`,
		Example: "  cutover locks\n  cutover locks --release default --force",
		Args:    noArgs,
	}
	output := outputFlag(cmd, "text", "json")
	release := cmd.Flags().String("release", "", "delete the stale lock of this scope (needs --force)")
	force := cmd.Flags().Bool("force", false, "confirm --release")
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *release != "" && !*force {
			return usageErrorf("--release %s deletes a lock: add --force to confirm", *release)
		}
		ctx := cmd.Context()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		kv, err := js.KeyValue(ctx, events.BucketLocks)
		if err != nil {
			return fmt.Errorf("open bucket %s: %w (is cutover dev or a planner running on this NATS?)", events.BucketLocks, err)
		}
		rows, entries, err := readLocks(ctx, js, kv)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if *release != "" {
			for i, r := range rows {
				if r.Scope != *release {
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
			return fmt.Errorf("no lock for scope %q; cutover locks lists them", *release)
		}
		if output.value == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "no locks: no upgrade is running")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SCOPE\tUPGRADE\tPHASE\tHELD FOR\tSTATE")
		for _, r := range rows {
			state := "live"
			if !r.Live {
				state = "stale: its upgrade " + map[bool]string{true: "is unknown", false: "ended"}[r.Phase == "unknown"] + "; cutover locks --release " + r.Scope + " --force"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Scope, r.Upgrade, r.Phase, render.Duration(time.Since(r.Since)), state)
		}
		return tw.Flush()
	}
	return cmd
}

// readLocks reads every scope lock and the phase of its holder.
func readLocks(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue) ([]lockRow, []jetstream.KeyValueEntry, error) {
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
	rows := []lockRow{}
	var entries []jetstream.KeyValueEntry
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if events.IsNotFound(err) {
			continue // released meanwhile
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read lock %s: %w", k, err)
		}
		r := lockRow{Scope: strings.TrimPrefix(k, lockPrefix), Upgrade: string(e.Value()), Since: e.Created(), Phase: "unknown"}
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
