package migration

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	migmysql "github.com/cutover-dev/cutover/services/migrator/mysql"
	migpostgres "github.com/cutover-dev/cutover/services/migrator/postgres"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/services/migrator"
)

// Snapshots lists (verb list) or prunes to the newest keep (verb prune)
// the migrator's snapshots of a database, reading them directly.
func Snapshots(ctx context.Context, w io.Writer, verb, driver, database, dumpDir string, keep int) error {
	if database == "" {
		return exit.Usagef("--database is required: the file path (sqlite), postgres:// or mysql:// URL the migrator migrates")
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
		return exit.Usagef("--driver %q: use sqlite, postgres or mysql", driver)
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
