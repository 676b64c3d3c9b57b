package migrator_test

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/migrator"
)

// Files that cannot run in the one transaction golang-migrate gives each
// file fail at once, having changed nothing: the migrator says how to split
// them or which option to set, and restores nothing. With golang-migrate's
// option in the location (x-no-tx-wrap for SQLite, x-multi-statement for
// PostgreSQL) they run.
func TestNonTransactionalFiles(t *testing.T) {
	cases := map[string]struct{ source, option, hint, check string }{
		"sqlite":   {"testdata/notx_sqlite", "?x-no-tx-wrap=true", "add ?x-no-tx-wrap=true to the database location", `SELECT COUNT(*) FROM pragma_table_info('items') WHERE name = 'qty'`},
		"postgres": {"testdata/pg/notx", "&x-multi-statement=true", "put that statement alone in a file of its own, or add x-multi-statement=true", `SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'items_name'`},
	}
	for _, tg := range targets() {
		c, ok := cases[tg.driver]
		if !ok {
			continue
		}
		t.Run(tg.driver, func(t *testing.T) {
			drivers := tg.drivers(t)
			h := start(t, migrator.Config{Drivers: drivers})
			loc := tg.location(t)
			if fin, _ := h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: c.source, TargetVersion: 1})); fin.Type() != events.TypeMigrationCompleted {
				t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
			}
			fin, _ := h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc, Source: c.source}))
			failed := as[events.MigrationFailed](t, fin)
			if fin.Type() != events.TypeMigrationFailed || !strings.Contains(failed.Error, c.hint) || failed.Restore != nil ||
				failed.State != "clean at version 1 (the failed file rolled back; no other migration ran)" {
				t.Fatalf("answer %s %+v\nwant migration.failed saying %q, clean at version 1 with nothing restored", fin.Type(), failed, c.hint)
			}
			if v, dirty, _ := tg.versionOf(t, loc); v != 1 || dirty {
				t.Errorf("database at version %d dirty %v, want clean 1", v, dirty)
			}
			fin, _ = h.final(h.request(events.MigrationRequested{Driver: tg.driver, Database: loc + c.option, Source: c.source}))
			if fin.Type() != events.TypeMigrationCompleted || as[events.MigrationCompleted](t, fin).ToVersion != 2 {
				t.Fatalf("with %s: answer %s: %s", c.option, fin.Type(), fin.Data())
			}
			var n int
			if err := tg.open(t, loc).QueryRow(c.check).Scan(&n); err != nil || n != 1 {
				t.Errorf("%s = %d (%v), want 1: the file ran as written", c.check, n, err)
			}
		})
	}
}
