// Package migration is the CLI's side of the migrator (cutover db): it
// sends a request, waits for the migrator's answer and prints it.
package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/events"
)

// Ask publishes a request to the migrator and returns its final answer,
// waiting at most timeout for it.
func Ask(ctx context.Context, js jetstream.JetStream, data events.Data, timeout time.Duration) (events.Event, error) {
	e, err := events.New(events.Source("cli", ""), data)
	if err != nil {
		return events.Event{}, err
	}
	// Listen before asking, so the answer cannot come first.
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		// One filter (the whole stream, new events only): what the CLI's
		// identity may consume; the answer or a rejection is picked by id.
		FilterSubjects: []string{events.SubjectAll}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return events.Event{}, fmt.Errorf("listen for the migrator's answer: %w", err)
	}
	// An ordered consumer is made on the server when it starts consuming:
	// before the request, or a quick answer is missed.
	it, err := cons.Messages()
	if err != nil {
		return events.Event{}, fmt.Errorf("listen for the migrator's answer: %w", err)
	}
	defer it.Stop()
	if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
		return events.Event{}, fmt.Errorf("send %s: %w", e.Type(), err)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() { <-wctx.Done(); it.Stop() }()
	for {
		msg, err := it.Next()
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return events.Event{}, fmt.Errorf("no answer from the migrator within %v (request %s); is a migrator running on this NATS? (cutover dev runs one; cutover watch shows its events)", timeout, e.ID())
			}
			return events.Event{}, err
		}
		ans, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil {
			continue
		}
		if ans.Type() == events.TypeEventRejected {
			if r, err := events.DataAs[events.EventRejected](ans); err == nil && r.EventID == e.ID() {
				if r.Field == "" {
					return events.Event{}, fmt.Errorf("the migrator refused the request: %s", r.Reason)
				}
				return events.Event{}, fmt.Errorf("the migrator refused the request (field %s): %s", r.Field, r.Reason)
			}
			continue
		}
		if events.CausationID(ans) != e.ID() {
			continue
		}
		switch ans.Type() {
		case events.TypeMigrationCompleted, events.TypeMigrationFailed, events.TypeMigrationRollbackCompleted, events.TypeMigrationStatusReported:
			return ans, nil
		}
	}
}

// Request sends a migration or rollback request and prints its answer as
// text or json; a failed migration is exit code 1.
func Request(ctx context.Context, js jetstream.JetStream, w io.Writer, data events.Data, timeout time.Duration, format string) error {
	ans, err := Ask(ctx, js, data, timeout)
	if err != nil {
		return err
	}
	if format == "json" {
		if err := printAnswerJSON(w, ans); err != nil {
			return err
		}
	} else {
		printAnswer(w, ans)
	}
	if ans.Type() == events.TypeMigrationFailed {
		return exit.Error{Code: 1}
	}
	return nil
}

// printAnswerJSON prints {"type": ..., "data": ...}.
func printAnswerJSON(w io.Writer, ans events.Event) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}{ans.Type(), ans.ID(), ans.Data()})
}

func printAnswer(w io.Writer, ans events.Event) {
	switch ans.Type() {
	case events.TypeMigrationCompleted:
		d, _ := events.DataAs[events.MigrationCompleted](ans)
		if d.Recovered != nil {
			fmt.Fprintf(w, "recovered: restored snapshot %s (version %d, taken %s); %s\n", d.Recovered.SnapshotID, d.Recovered.Version, d.Recovered.Taken.Local().Format(time.DateTime), d.Recovered.Lost)
		}
		if d.FromVersion == d.ToVersion {
			fmt.Fprintf(w, "%s: already at version %d\n", d.Database, d.ToVersion)
			return
		}
		fmt.Fprintf(w, "%s: migrated from version %d to %d in %dms (snapshot %s)\n", d.Database, d.FromVersion, d.ToVersion, d.DurationMs, d.SnapshotID)
	case events.TypeMigrationRollbackCompleted:
		d, _ := events.DataAs[events.MigrationRollbackCompleted](ans)
		fmt.Fprintf(w, "%s: rolled back from version %d to %d through %s\n", d.Database, d.FromVersion, d.ToVersion, d.Path)
		if d.Restore != nil {
			fmt.Fprintf(w, "restored snapshot %s (version %d, taken %s); %s\n", d.Restore.SnapshotID, d.Restore.Version, d.Restore.Taken.Local().Format(time.DateTime), d.Restore.Lost)
		}
	case events.TypeMigrationFailed:
		d, _ := events.DataAs[events.MigrationFailed](ans)
		file := ""
		if d.File != "" {
			file = d.File + ": "
		}
		fmt.Fprintf(w, "%s: FAILED: %s%s\nstate: %s\n", d.Database, file, d.Error, d.State)
		if d.Restore != nil {
			verb := "not restored"
			if d.Restore.Restored {
				verb = "restored"
			}
			fmt.Fprintf(w, "snapshot %s (version %d, taken %s) %s\n", d.Restore.SnapshotID, d.Restore.Version, d.Restore.Taken.Local().Format(time.DateTime), verb)
			if len(d.Restore.Writes) > 0 {
				tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  table\tinserted\tupdated\tdeleted\t(after the snapshot)")
				for _, t := range d.Restore.Writes {
					fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t\n", t.Table, t.Inserts, t.Updates, t.Deletes)
				}
				_ = tw.Flush()
			}
		}
		for i, c := range d.Choices {
			fmt.Fprintf(w, "choice %d: %s\n", i+1, c)
		}
	}
}

// Status asks for a database's state and prints it as text or json (only
// the snapshots with snapshotsOnly); a dirty database or a source with
// problems is exit code 1.
func Status(ctx context.Context, js jetstream.JetStream, w io.Writer, req events.MigrationStatusRequested, timeout time.Duration, format string, snapshotsOnly bool) error {
	ans, err := Ask(ctx, js, req, timeout)
	if err != nil {
		return err
	}
	d, err := events.DataAs[events.MigrationStatusReported](ans)
	if err != nil {
		return err
	}
	if d.Error != "" {
		if format == "json" {
			_ = printAnswerJSON(w, ans)
		}
		return errors.New(d.Error)
	}
	if format == "json" {
		if err := printAnswerJSON(w, ans); err != nil {
			return err
		}
	} else {
		if !snapshotsOnly {
			state := "clean"
			if d.Dirty {
				state = "DIRTY"
			}
			fmt.Fprintf(w, "%s: version %d, %s, %d files in the ledger\n", d.Database, d.Version, state, d.Applied)
			if req.Source != "" {
				fmt.Fprintf(w, "source: last version %d, %d pending", d.Latest, len(d.Pending))
				if len(d.Pending) > 0 {
					fmt.Fprintf(w, ": %s", strings.Join(d.Pending, ", "))
				}
				fmt.Fprintln(w)
			}
			for _, p := range d.Problems {
				fmt.Fprintf(w, "problem: %s\n", p)
			}
			if d.Run != nil {
				fmt.Fprintf(w, "run in progress (or stopped midway): %s, from %d to %d, started %s, snapshot %s\n",
					d.Run.ID, d.Run.FromVersion, d.Run.TargetVersion, d.Run.Started.Local().Format(time.DateTime), d.Run.SnapshotID)
			}
		}
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "snapshot\ttaken\tversion\tlocation")
		for _, s := range d.Snapshots {
			dirty := ""
			if s.Dirty {
				dirty = " (dirty)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d%s\t%s\n", s.ID, s.Taken.Local().Format(time.DateTime), s.Version, dirty, s.Location)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if !snapshotsOnly && (d.Dirty || len(d.Problems) > 0) {
		return exit.Error{Code: 1}
	}
	return nil
}
