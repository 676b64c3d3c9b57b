package main

import (
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/migration"
)

// newSnapshotsCmd lists or prunes the pre-migration snapshots of one
// database. It works on the database directly, like the migrator, not
// through NATS.
func newSnapshotsCmd() *cobra.Command {
	return cli.GroupCmd("snapshots", "list or prune the migrator's pre-migration snapshots of a database",
		newSnapshotsVerbCmd("list", "list a database's snapshots, newest first"),
		newSnapshotsVerbCmd("prune", "remove all but the newest --keep snapshots, and what interrupted snapshots left"))
}

func newSnapshotsVerbCmd(verb, short string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     verb + " --driver sqlite|postgres|mysql --database LOCATION",
		Short:   short,
		Example: "  cutover snapshots " + verb + " --driver sqlite --database /var/lib/app/app.db",
		Args:    cli.NoArgs,
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
		return migration.Snapshots(cmd.Context(), cmd.OutOrStdout(), verb, *driver, *database, dir, *keep)
	}
	return cmd
}
