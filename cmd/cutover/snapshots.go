package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/cutover-dev/cutover/services/migrator"
	migpostgres "github.com/cutover-dev/cutover/services/migrator/postgres"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// runSnapshots lists or prunes the pre-migration snapshots of one database.
// It works on the database directly, like the migrator, not through NATS.
func runSnapshots(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "prune") {
		return errors.New("usage: cutover snapshots list|prune --driver sqlite|postgres --database LOCATION [--keep N]")
	}
	verb := args[0]
	fs := flag.NewFlagSet("snapshots "+verb, flag.ContinueOnError)
	driver := fs.String("driver", "sqlite", "database driver: sqlite or postgres")
	database := fs.String("database", "", "the database: a file path (sqlite) or a postgres:// URL")
	keep := fs.Int("keep", 3, "prune: how many of the newest snapshots to keep")
	dumpDir := fs.String("pg-dump-dir", "", "postgres: where pg_dump snapshots are kept (the migrator's --pg-dump-dir)")
	if _, err := parseArgs(fs, args[1:]); err != nil {
		return err
	}
	if *database == "" {
		return errors.New("--database is required: the file path (sqlite) or postgres:// URL the migrator migrates")
	}
	var drv migrator.Driver
	switch *driver {
	case "sqlite":
		drv = migsqlite.Driver{}
	case "postgres":
		drv = migpostgres.Driver{DumpDir: *dumpDir}
	default:
		return fmt.Errorf("--driver %q: use sqlite or postgres", *driver)
	}
	var snaps []migrator.Snapshot
	var err error
	if verb == "list" {
		snaps, err = migrator.ListSnapshots(ctx, drv, *database)
	} else {
		snaps, err = migrator.PruneSnapshots(ctx, drv, *database, *keep)
	}
	if err != nil {
		return err
	}
	if verb == "prune" {
		fmt.Printf("removed %d snapshots, kept the newest %d\n", len(snaps), *keep)
		swept, err := migrator.SweepLeftovers(ctx, drv, *database)
		for _, p := range swept {
			fmt.Printf("removed %s, left by an interrupted snapshot or restore\n", p)
		}
		if err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
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
