package migrator_test

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/mysql"  // mysql:// for golang-migrate itself
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // pgx5:// for golang-migrate itself
	_ "github.com/golang-migrate/migrate/v4/database/sqlite" // sqlite:// for golang-migrate itself
	_ "github.com/golang-migrate/migrate/v4/source/file"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
)

// gappedVersions are the versions of testdata/gapped, in order.
var gappedVersions = []uint{0, 1, 5, 10, 41, 190}

// versionOf reads golang-migrate's version row and the ledger's versions.
func (tg target) versionOf(t *testing.T, loc string) (int64, bool, []uint) {
	t.Helper()
	db := tg.open(t, loc)
	var v int64
	var dirty bool
	if err := db.QueryRow(`SELECT version, dirty FROM schema_migrations`).Scan(&v, &dirty); err != nil {
		t.Fatal(err)
	}
	var led []uint
	rows, err := db.Query(`SELECT version FROM cutover_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		led = append(led, uint(n))
	}
	return v, dirty, led
}

// A real project's set has holes in its numbering and may start at 0:
// golang-migrate steps from one existing version to the next, and so does
// the migrator, on PostgreSQL and SQLite. A database whose version is one in
// the middle of the set (migrated there by the migrator, or by golang-migrate
// alone, without a ledger) goes on from it.
func TestGappedSetWithVersionZero(t *testing.T) {
	for _, tg := range targets() {
		t.Run(tg.driver, func(t *testing.T) {
			src, err := filepath.Abs("testdata/gapped")
			if tg.driver == "mysql" {
				src, err = filepath.Abs("testdata/mysql/gapped")
			}
			if err != nil {
				t.Fatal(err)
			}
			h := start(t, migrator.Config{Drivers: tg.drivers(t)})
			check := func(t *testing.T, loc string, from, to uint) {
				t.Helper()
				var req events.Data = events.MigrationRequested{Driver: tg.driver, Database: loc, Source: src}
				if to != 190 {
					req = events.MigrationRequested{Driver: tg.driver, Database: loc, Source: src, TargetVersion: to}
				}
				fin, _ := h.final(h.request(req))
				if fin.Type() != events.TypeMigrationCompleted {
					t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
				}
				done := as[events.MigrationCompleted](t, fin)
				if done.FromVersion != from || done.ToVersion != to {
					t.Errorf("completed %d -> %d, want %d -> %d", done.FromVersion, done.ToVersion, from, to)
				}
				v, dirty, led := tg.versionOf(t, loc)
				var want []uint
				for _, g := range gappedVersions {
					if g <= to {
						want = append(want, g)
					}
				}
				if v != int64(to) || dirty || !slices.Equal(led, want) {
					t.Errorf("version %d dirty %v ledger %v, want %d clean, ledger %v", v, dirty, led, to, want)
				}
			}
			t.Run("from empty", func(t *testing.T) {
				loc := tg.location(t)
				check(t, loc, 0, 190)
				var value string
				if err := tg.open(t, loc).QueryRow(`SELECT value FROM settings WHERE name = 'schema'`).Scan(&value); err != nil || value != "v190" {
					t.Errorf("settings.schema = %q (%v), want v190: version 0 ran, then every later file", value, err)
				}
			})
			t.Run("to the middle of the gaps, then on", func(t *testing.T) {
				loc := tg.location(t)
				check(t, loc, 0, 10)
				check(t, loc, 10, 190)
			})
			t.Run("migrated to 10 by golang-migrate alone", func(t *testing.T) {
				loc := tg.location(t)
				dbURL := "sqlite://" + loc
				switch tg.driver {
				case "postgres":
					dbURL = "pgx5://" + strings.TrimPrefix(loc, "postgres://")
				case "mysql":
					cfg, err := mysql.ParseURL(loc)
					if err != nil {
						t.Fatal(err)
					}
					dbURL = "mysql://" + cfg.FormatDSN()
				}
				m, err := migrate.New((&url.URL{Scheme: "file", Path: src}).String(), dbURL)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.Migrate(10); err != nil {
					t.Fatal(err)
				}
				_, _ = m.Close()
				check(t, loc, 10, 190)
			})
		})
	}
}
