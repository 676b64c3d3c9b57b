package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/services/migrator"
	migmysql "github.com/cutover-dev/cutover/services/migrator/mysql"
	migpostgres "github.com/cutover-dev/cutover/services/migrator/postgres"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// newSnapshotsCmd lists or prunes the pre-migration snapshots of one
// database. It works on the database directly, like the migrator, not
// through NATS.
func newSnapshotsCmd() *cobra.Command {
	return newGroupCmd("snapshots", "list or prune the migrator's pre-migration snapshots of a database",
		newSnapshotsVerbCmd("list", "list a database's snapshots, newest first"),
		newSnapshotsVerbCmd("prune", "remove all but the newest --keep snapshots, and what interrupted snapshots left"))
}

func newSnapshotsVerbCmd(verb, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     verb + " --driver sqlite|postgres|mysql --database LOCATION",
		Short:   short,
		Example: "  cutover snapshots " + verb + " --driver sqlite --database /var/lib/app/app.db",
		Args:    noArgs,
	}
	driver := cmd.Flags().String("driver", "sqlite", "database driver: sqlite, postgres or mysql (mariadb)")
	_ = cmd.RegisterFlagCompletionFunc("driver", cobra.FixedCompletions([]string{"sqlite", "postgres", "mysql", "mariadb"}, cobra.ShellCompDirectiveNoFileComp))
	database := cmd.Flags().String("database", "", "the database: a file path (sqlite), a postgres:// or a mysql:// URL")
	dumpDir := cmd.Flags().String("pg-dump-dir", "", "postgres: where pg_dump snapshots are kept (the migrator's --pg-dump-dir)")
	myDumpDir := cmd.Flags().String("mysql-dump-dir", "", "mysql: where mariadb-dump snapshots are kept (the migrator's --mysql-dump-dir)")
	keep := new(int)
	if verb == "prune" {
		cmd.Flags().IntVar(keep, "keep", 3, "how many of the newest snapshots to keep")
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		dir := *dumpDir
		if *driver == "mysql" || *driver == "mariadb" {
			dir = *myDumpDir
		}
		return runSnapshots(cmd.Context(), cmd.OutOrStdout(), verb, *driver, *database, dir, *keep)
	}
	return cmd
}

func runSnapshots(ctx context.Context, w io.Writer, verb, driver, database, dumpDir string, keep int) error {
	if database == "" {
		return usageErrorf("--database is required: the file path (sqlite), postgres:// or mysql:// URL the migrator migrates")
	}
	var drv migrator.Driver
	switch driver {
	case "sqlite":
		drv = migsqlite.Driver{}
	case "postgres":
		drv = migpostgres.Driver{DumpDir: dumpDir}
	case "mysql", "mariadb":
		drv = migmysql.Driver{DumpDir: dumpDir}
	default:
		return usageErrorf("--driver %q: use sqlite, postgres or mysql", driver)
	}
	var snaps []migrator.Snapshot
	var err error
	if verb == "list" {
		snaps, err = migrator.ListSnapshots(ctx, drv, database)
	} else {
		snaps, err = migrator.PruneSnapshots(ctx, drv, database, keep)
	}
	if err != nil {
		return err
	}
	if verb == "prune" {
		fmt.Fprintf(w, "removed %s, kept the newest %d\n", render.Plural(len(snaps), "snapshot"), keep)
		swept, err := migrator.SweepLeftovers(ctx, drv, database)
		for _, p := range swept {
			fmt.Fprintf(w, "removed %s, left by an interrupted snapshot or restore\n", p)
		}
		if err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "snapshot\ttaken\tversion\tlocation")
	for _, s := range snaps {
		dirty := ""
		if s.Dirty {
			dirty = " (dirty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%s\t%s\n", s.ID, s.Time.Local().Format("2006-01-02 15:04:05"), s.Version, dirty, s.Location)
	}
	return tw.Flush()
}
