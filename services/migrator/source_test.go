package migrator_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
)

func TestCheckSource(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	mig := func(v uint, name, sum string, down bool) migrator.Migration {
		m := migrator.Migration{Version: v, Name: name, Up: filepathName(v, name, "up"), SHA256: sum}
		if down {
			m.Down = filepathName(v, name, "down")
		}
		return m
	}
	ok := []migrator.Migration{mig(1, "users", "aaaa", true), mig(2, "email", "bbbb", true), mig(3, "orders", "cccc", false)}
	applied := []migrator.Applied{{Version: 1, File: "0001_users.up.sql", SHA256: "aaaa", AppliedAt: at}, {Version: 2, File: "0002_email.up.sql", SHA256: "bbbb", AppliedAt: at}}
	cases := []struct {
		name        string
		migs        []migrator.Migration
		current     uint
		applied     []migrator.Applied
		requireDown bool
		want        string
	}{
		{"clean", ok, 2, applied, false, ""},
		{"no ledger yet is adopted, not checked", ok, 2, nil, false, ""},
		{"gaps are golang-migrate's numbering, not a problem", []migrator.Migration{mig(1, "users", "aaaa", true), mig(2, "email", "bbbb", true), mig(5, "late", "eeee", true), mig(7, "later", "ffff", true)}, 2, applied, false, ""},
		{"version 0 is a version", []migrator.Migration{mig(0, "init", "0000", false), mig(1, "users", "aaaa", true), mig(2, "email", "bbbb", true)}, 2,
			append([]migrator.Applied{{Version: 0, File: "0000_init.up.sql", SHA256: "0000", AppliedAt: at}}, applied...), false, ""},
		{"timestamps", []migrator.Migration{mig(20250101120000, "a", "1", true), mig(20250301090000, "b", "2", true)}, 0, nil, false, ""},
		{"database's version missing without a ledger", ok[:2], 3, nil, false,
			"applied migration version 3 (the database's version) is missing from the source; put the file back (a source must keep every applied migration)"},
		{"changed applied file", []migrator.Migration{mig(1, "users", "aaaa", true), mig(2, "email", "b0b0b0b0b0b0b0b0", true), mig(3, "orders", "cccc", false)}, 2,
			[]migrator.Applied{applied[0], {Version: 2, File: "0002_email.up.sql", SHA256: "bbbbbbbbbbbbbbbbbb", AppliedAt: at}}, false,
			"applied migration 0002_email.up.sql (version 2) changed since it was applied at 2025-03-01T12:00:00Z (sha256 bbbbbbbbbbbb then, b0b0b0b0b0b0 now); restore the original file and put the change in a new migration"},
		{"never applied below current", []migrator.Migration{mig(1, "users", "aaaa", true), mig(2, "email", "bbbb", true), mig(3, "orders", "cccc", true), mig(4, "x", "dddd", true)}, 3,
			[]migrator.Applied{applied[0], {Version: 3, File: "0003_orders.up.sql", SHA256: "cccc", AppliedAt: at}}, false,
			"migration 0002_email.up.sql (version 2) is at or below the database's version 3 but was never applied; golang-migrate would skip it silently: renumber it above 3"},
		{"applied file missing", ok[:1], 1, applied, false,
			"applied migration 0002_email.up.sql (version 2) is missing from the source; put the file back (a source must keep every applied migration)"},
		{"missing down file where required", ok, 2, applied, true,
			"down migrations are required and 0003_orders.down.sql is missing; add them or turn off Config.RequireDown"},
		{"down not required", ok, 2, applied, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := migrator.CheckSource(c.migs, c.current, c.migs[len(c.migs)-1].Version, c.applied, c.requireDown)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("CheckSource() =\n  %q\nwant\n  %q", got, c.want)
			}
		})
	}
}

func filepathName(v uint, name, dir string) string {
	return filepath.Base(pad(v) + "_" + name + "." + dir + ".sql")
}

func pad(v uint) string {
	s := "000" + itoa(v)
	if v >= 1000 {
		return itoa(v)
	}
	return s[len(s)-4:]
}

func itoa(v uint) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v /= 10 {
		b = append([]byte{byte('0' + v%10)}, b...)
	}
	return string(b)
}

func TestReadSourcePhases(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"0001_users.up.sql":                 "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);",
		"0002_display.expand.up.sql":        "ALTER TABLE users ADD COLUMN display TEXT;",
		"0002_display.expand.down.sql":      "ALTER TABLE users DROP COLUMN display;",
		"0003_drop_name.contract.up.sql":    "ALTER TABLE users DROP COLUMN name;",
		"README.md":                         "not a migration",
		"0004_after.up.sql":                 "SELECT 1;",
		"0003_drop_name.contract.down.sql":  "ALTER TABLE users ADD COLUMN name TEXT;",
		"0005_more.expand.up.sql":           "SELECT 2;",
		"0001_users.down.sql":               "DROP TABLE users;",
		"0006_notes.contract.expand.up.sql": "SELECT 3;", // the last marker wins
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	migs, err := migrator.ReadSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, phase string
	}{{"users", ""}, {"display", "expand"}, {"drop_name", "contract"}, {"after", ""}, {"more", "expand"}, {"notes.contract", "expand"}}
	if len(migs) != len(want) {
		t.Fatalf("ReadSource() = %+v", migs)
	}
	for i, w := range want {
		if migs[i].Name != w.name || migs[i].Phase != w.phase || len(migs[i].SHA256) != 64 {
			t.Errorf("migration %d = %+v, want name %s phase %q", i, migs[i], w.name, w.phase)
		}
	}
}
