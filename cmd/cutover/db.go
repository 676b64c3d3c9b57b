package main

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
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/events"
)

// dbOptions are the flags every cutover db command takes.
type dbOptions struct {
	driver, database, source, id string
	timeout                      time.Duration
	output                       *formatValue
	nats                         *natsOptions
}

func dbFlags(cmd *cobra.Command, sourceHelp string) *dbOptions {
	o := &dbOptions{}
	cmd.Flags().StringVar(&o.driver, "driver", "sqlite", "database driver: sqlite, postgres or mysql")
	_ = cmd.RegisterFlagCompletionFunc("driver", cobra.FixedCompletions([]string{"sqlite", "postgres", "mysql"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().StringVar(&o.database, "database", "", "the database as the migrator reaches it: a file path (sqlite) or a postgres:// or mysql:// URL")
	cmd.Flags().StringVar(&o.id, "database-id", "", "the database's id in the migrator's allow-list (with an inventory: the service's name); the migrator then uses its own location for it")
	cmd.Flags().StringVar(&o.source, "source", "", sourceHelp)
	cmd.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "how long to wait for the migrator's answer")
	o.output = outputFlag(cmd, "text", "json")
	o.nats = natsFlags(cmd)
	return o
}

func newDbCmd() *cobra.Command {
	return newGroupCmd("db", "migrate a database through the running migrator: status, up, rollback, recover, snapshots",
		newDbStatusCmd(), newDbUpCmd(), newDbRollbackCmd(), newDbRecoverCmd(), newDbSnapshotsCmd())
}

func newDbStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status --driver D --database LOCATION [--source DIR]",
		Short: "a database's version, pending files, recorded run and snapshots",
		Long: `Ask the running migrator for a database's state: the version golang-migrate
recorded and whether it is dirty, the files of --source not applied yet and what
the migrator would refuse in it, the run recorded as in progress (the one that
left a dirty database dirty), and the snapshots. Exit 0 when the database is
clean and the source has no problem, 1 otherwise.`,
		Example: "  cutover db status --driver sqlite --database /var/lib/app/app.db --source ./migrations",
		Args:    noArgs,
	}
	o := dbFlags(cmd, "migrations directory, as the migrator reads it (optional: lists pending files)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := o.check(false); err != nil {
			return err
		}
		return o.status(cmd.Context(), cmd.OutOrStdout(), false)
	}
	return cmd
}

func newDbSnapshotsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "snapshots --driver D --database LOCATION",
		Short:   "a database's snapshots, newest first, as the migrator sees them",
		Example: "  cutover db snapshots --driver postgres --database postgres://migrator@db1:5432/app",
		Args:    noArgs,
	}
	o := dbFlags(cmd, "unused")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := o.check(false); err != nil {
			return err
		}
		return o.status(cmd.Context(), cmd.OutOrStdout(), true)
	}
	return cmd
}

func newDbUpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up --driver D --database LOCATION --source DIR [--to N]",
		Short: "migrate a database up, after a snapshot, and wait for the result",
		Long: `Ask the running migrator to migrate a database up to --to (default: the
source's last version) and wait for its answer. Exit 0 only when the database
reached the target; otherwise the migrator's error, the database's state and
the choices are printed and the exit code is 1.`,
		Example: "  cutover db up --driver sqlite --database /var/lib/app/app.db --source ./migrations\n" +
			"  cutover db up --driver postgres --database postgres://migrator@127.0.0.1:5432/app --source /srv/app/migrations --to 42 -o json",
		Args: noArgs,
	}
	o := dbFlags(cmd, "migrations directory as the migrator reads it, or image:<ref>[#/dir]")
	to := cmd.Flags().Uint("to", 0, "target version (default: the last of the source)")
	phase := cmd.Flags().String("phase", "all", "expand, contract or all")
	method := cmd.Flags().String("snapshot-method", "", "PostgreSQL snapshot method for this run: auto, template or dump (default: the migrator's)")
	anyway := cmd.Flags().Bool("restore-anyway", false, "if the run fails, restore the snapshot even when writes after it were counted (they are lost)")
	fence := cmd.Flags().String("fence", "", "connect: keep other roles out of the PostgreSQL database for the run (they are disconnected; no write can land after the snapshot); read-only: let them read but not write for the run")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := o.check(true); err != nil {
			return err
		}
		return o.request(cmd.Context(), cmd.OutOrStdout(), events.MigrationRequested{
			Driver: o.driver, Database: o.database, DatabaseID: o.id, Source: o.source, TargetVersion: *to, Phase: *phase,
			SnapshotMethod: *method, RestoreAnyway: *anyway, Fence: *fence,
		})
	}
	return cmd
}

func newDbRecoverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recover --driver D --database LOCATION --source DIR [--to N] [--restore-anyway]",
		Short: "restore a dirty database from the snapshot of the run that left it dirty, then migrate",
		Long: `Ask the running migrator to recover a dirty database: it restores the
snapshot taken by the migrator run recorded as having left it dirty, and no
other, then migrates up to --to. When writes committed after that snapshot are
counted it refuses and prints them, unless --restore-anyway.`,
		Example: "  cutover db recover --driver sqlite --database /var/lib/app/app.db --source ./migrations",
		Args:    noArgs,
	}
	o := dbFlags(cmd, "migrations directory as the migrator reads it, or image:<ref>[#/dir]")
	to := cmd.Flags().Uint("to", 0, "target version after the restore (default: the last of the source)")
	anyway := cmd.Flags().Bool("restore-anyway", false, "restore even when writes after the snapshot were counted (they are lost)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := o.check(true); err != nil {
			return err
		}
		return o.request(cmd.Context(), cmd.OutOrStdout(), events.MigrationRequested{
			Driver: o.driver, Database: o.database, DatabaseID: o.id, Source: o.source, TargetVersion: *to, Recover: true, RestoreAnyway: *anyway,
		})
	}
	return cmd
}

func newDbRollbackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback --driver D --database LOCATION --to N [--source DIR] [--snapshot ID]",
		Short: "take a database back down to a version, through down files or a snapshot",
		Long: `Ask the running migrator to take a database back to version --to: through the
down files of --source when every step has one, otherwise by restoring
--snapshot (which must hold version --to). A snapshot restore reports the
writes after the snapshot that it took out.`,
		Example: "  cutover db rollback --driver sqlite --database /var/lib/app/app.db --source ./migrations --to 3\n" +
			"  cutover db rollback --driver postgres --database postgres://migrator@127.0.0.1:5432/app --to 3 --snapshot app_snap_20260101T000000_000000",
		Args: noArgs,
	}
	o := dbFlags(cmd, "migrations directory with the down files, as the migrator reads it")
	to := cmd.Flags().Uint("to", 0, "version to return to (required)")
	snap := cmd.Flags().String("snapshot", "", "snapshot to restore when the down files cannot be used (cutover db snapshots lists them)")
	anyway := cmd.Flags().Bool("restore-anyway", false, "restore the snapshot although writes after it were counted")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := o.check(false); err != nil {
			return err
		}
		if !cmd.Flags().Changed("to") {
			return usageErrorf("--to is required: the version to return to")
		}
		return o.request(cmd.Context(), cmd.OutOrStdout(), events.MigrationRollbackRequested{
			Driver: o.driver, Database: o.database, DatabaseID: o.id, Source: o.source, ToVersion: *to, SnapshotID: *snap, RestoreAnyway: *anyway,
		})
	}
	return cmd
}

func (o *dbOptions) check(needSource bool) error {
	if o.database == "" && o.id == "" {
		return usageErrorf("--database is required: the file path (sqlite) or URL (postgres://, mysql://) as the migrator reaches it (or --database-id, the id in the migrator's allow-list)")
	}
	if o.database == "" {
		o.database = o.id // the migrator replaces it with its own location
	}
	if needSource && o.source == "" {
		return usageErrorf("--source is required: the migrations directory as the migrator reads it (or image:<ref>[#/dir])")
	}
	return nil
}

// ask publishes a request to the migrator and returns its final answer.
func (o *dbOptions) ask(ctx context.Context, data events.Data) (events.Event, error) {
	nc, js, err := o.nats.connect(ctx)
	if err != nil {
		return events.Event{}, err
	}
	defer nc.Close()
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
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	go func() { <-wctx.Done(); it.Stop() }()
	for {
		msg, err := it.Next()
		if err != nil {
			if wctx.Err() != nil && ctx.Err() == nil {
				return events.Event{}, fmt.Errorf("no answer from the migrator within %v (request %s); is a migrator running on this NATS? (cutover dev runs one; cutover watch shows its events)", o.timeout, e.ID())
			}
			return events.Event{}, err
		}
		ans, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil {
			continue
		}
		if ans.Type() == events.TypeEventRejected {
			if r, err := events.DataAs[events.EventRejected](ans); err == nil && r.EventID == e.ID() {
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

// request sends a migration or rollback request and prints its answer.
func (o *dbOptions) request(ctx context.Context, w io.Writer, data events.Data) error {
	ans, err := o.ask(ctx, data)
	if err != nil {
		return err
	}
	if o.output.value == "json" {
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

// status asks for a database's state and prints it (only the snapshots
// with snapshotsOnly).
func (o *dbOptions) status(ctx context.Context, w io.Writer, snapshotsOnly bool) error {
	req := events.MigrationStatusRequested{Driver: o.driver, Database: o.database, DatabaseID: o.id}
	if !snapshotsOnly {
		req.Source = o.source
	}
	ans, err := o.ask(ctx, req)
	if err != nil {
		return err
	}
	d, err := events.DataAs[events.MigrationStatusReported](ans)
	if err != nil {
		return err
	}
	if d.Error != "" {
		if o.output.value == "json" {
			_ = printAnswerJSON(w, ans)
		}
		return errors.New(d.Error)
	}
	if o.output.value == "json" {
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
			if o.source != "" {
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
