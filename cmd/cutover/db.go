package main

import (
	"context"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/migration"
	"github.com/cutover-dev/cutover/events"
)

// dbOptions are the flags every cutover db command takes.
type dbOptions struct {
	driver, database, source, id string
	timeout                      time.Duration
	output                       *cli.FormatValue
	nats                         *cli.NATS
}

func dbFlags(cmd *cobra.Command, sourceHelp string) *dbOptions {
	o := &dbOptions{}
	cmd.Flags().StringVar(&o.driver, "driver", "sqlite", "database driver: sqlite, postgres or mysql")
	_ = cmd.RegisterFlagCompletionFunc("driver", cobra.FixedCompletions([]string{"sqlite", "postgres", "mysql"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().StringVar(&o.database, "database", "", "the database as the migrator reaches it: a file path (sqlite) or a postgres:// or mysql:// URL")
	cmd.Flags().StringVar(&o.id, "database-id", "", "the database's id in the migrator's allow-list (with an inventory: the service's name); the migrator then uses its own location for it")
	cmd.Flags().StringVar(&o.source, "source", "", sourceHelp)
	cmd.Flags().DurationVar(&o.timeout, "timeout", 30*time.Minute, "how long to wait for the migrator's answer")
	o.output = cli.OutputFlag(cmd, "text", "json")
	o.nats = cli.NATSFlags(cmd)
	return o
}

func newDbCmd() *cobra.Command {
	return cli.GroupCmd("db", "migrate a database through the running migrator: status, up, rollback, recover, snapshots",
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
		Args:    cli.NoArgs,
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
		Args:    cli.NoArgs,
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
		Args: cli.NoArgs,
	}
	o := dbFlags(cmd, "migrations directory as the migrator reads it, or image:<ref>[#/dir]")
	to := cmd.Flags().Uint("to", 0, "target version (default: the last of the source)")
	phase := cmd.Flags().String("phase", "all", "expand, contract or all")
	method := cmd.Flags().String("snapshot-method", "", "snapshot method for this run: PostgreSQL auto, template or dump; MariaDB/MySQL dump or backup (default: the migrator's)")
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
		Args:    cli.NoArgs,
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
		Args: cli.NoArgs,
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

// request sends a migration or rollback request and prints its answer.
func (o *dbOptions) request(ctx context.Context, w io.Writer, data events.Data) error {
	return o.nats.With(ctx, func(ctx context.Context, js jetstream.JetStream) error {
		return migration.Request(ctx, js, w, data, o.timeout, o.output.Value)
	})
}

// status asks for a database's state and prints it (only the snapshots
// with snapshotsOnly).
func (o *dbOptions) status(ctx context.Context, w io.Writer, snapshotsOnly bool) error {
	req := events.MigrationStatusRequested{Driver: o.driver, Database: o.database, DatabaseID: o.id}
	if !snapshotsOnly {
		req.Source = o.source
	}
	return o.nats.With(ctx, func(ctx context.Context, js jetstream.JetStream) error {
		return migration.Status(ctx, js, w, req, o.timeout, o.output.Value, snapshotsOnly)
	})
}
