package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/events"
)

// dbAnswer is what cutover db up|rollback|recover -o json prints.
type dbAnswer struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// The README's cutover db commands against `cutover dev`, for SQLite and
// PostgreSQL: up (a gapped set with a version 0), status and snapshots, a
// failing up (exit 1, the state and the choices), rollback through the down
// files. Each waits for the migrator's answer and exits 0 only on success.
func TestDbCommandsAgainstTheDevStack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the dev stack")
	}
	bin := buildCutover(t)
	addr, data := freeAddr(t), t.TempDir()
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("CUTOVER_DATA", data)
	startDev(t, bin, "--nodes", "none", "--nats-listen", addr, "--data", data, "--pg-dump-dir", t.TempDir())
	connectAs(t, "nats://"+addr, data, cli.Identity) // the stack is up
	nats := []string{"--nats", "nats://" + addr}
	cut := func(args ...string) binResult { t.Helper(); return runBin(t, bin, append(args, nats...)...) }

	src := t.TempDir()
	for name, body := range map[string]string{
		"0000_init.up.sql":        "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
		"0001_items.up.sql":       "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
		"0001_items.down.sql":     "DROP TABLE items;",
		"0005_items_qty.up.sql":   "ALTER TABLE items ADD COLUMN qty INTEGER NOT NULL DEFAULT 0;",
		"0005_items_qty.down.sql": "ALTER TABLE items DROP COLUMN qty;",
	} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	broken := t.TempDir()
	if err := os.CopyFS(broken, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "0009_broken.up.sql"), []byte("INSERT INTO missing_table (x) VALUES (1);"), 0o644); err != nil {
		t.Fatal(err)
	}

	databases := map[string]string{"sqlite": filepath.Join(t.TempDir(), "app.db")}
	if err := os.WriteFile(databases["sqlite"], nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if pg := os.Getenv("CUTOVER_TEST_POSTGRES"); pg != "" && exec.Command("psql", pg, "-c", "SELECT 1").Run() == nil {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		name := "cutover_db_cli_" + hex.EncodeToString(b)
		if out, err := exec.Command("psql", pg, "-c", "CREATE DATABASE "+name).CombinedOutput(); err != nil {
			t.Fatalf("create database: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			out, _ := exec.Command("psql", pg, "-Atc", "SELECT datname FROM pg_database WHERE datname LIKE '"+name+"%'").Output()
			for _, db := range strings.Fields(string(out)) {
				_ = exec.Command("psql", pg, "-c", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)").Run()
			}
		})
		databases["postgres"] = strings.Replace(pg, "/postgres?", "/"+name+"?", 1)
	} else {
		t.Log("PostgreSQL part skipped: CUTOVER_TEST_POSTGRES unset or not answering (scripts/postgres-up.sh)")
	}

	t.Run("the README's commands", func(t *testing.T) {
		// A database of its own for each driver, at version 0, as the
		// README's reader has.
		app := filepath.Join(t.TempDir(), "app.db")
		subst := map[string]string{"/tmp/app.db": app, "./migrations": src, "/srv/app/migrations": src}
		if pg, ok := databases["postgres"]; ok {
			q := strings.LastIndex(pg, "?")
			name := pg[strings.LastIndex(pg[:q], "/")+1:q] + "_readme" // dropped with the test's database
			if out, err := exec.Command("psql", pg, "-c", "CREATE DATABASE "+name).CombinedOutput(); err != nil {
				t.Fatalf("create database: %v\n%s", err, out)
			}
			subst["postgres://migrator@127.0.0.1:5432/app?sslmode=disable"] = pg[:strings.LastIndex(pg[:q], "/")+1] + name + pg[q:]
		}
		steps := readmeDbSteps(t)
		if len(steps) < 6 {
			t.Fatalf("README's cutover db block has %d steps, want at least up (twice), status, snapshots, rollback, recover", len(steps))
		}
		var ups []string
		for _, st := range steps {
			switch {
			case st.args[0] == "touch":
				if err := os.WriteFile(subst[st.args[1]], nil, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			case st.args[0] != "cutover" || st.args[1] == "dev":
				continue // the stack this test started
			}
			args := slices.Clone(st.args[1:])
			skip := false
			for i, a := range args {
				if v, ok := subst[a]; ok {
					args[i] = v
				} else if strings.HasPrefix(a, "postgres://") {
					skip = true // PostgreSQL not answering here
				}
			}
			if skip {
				t.Logf("README.md:%d skipped: no PostgreSQL (CUTOVER_TEST_POSTGRES)", st.line)
				continue
			}
			r := cut(args...)
			if r.code != 0 {
				t.Errorf("README.md:%d: cutover %s: exit %d, want 0\nstdout: %s\nstderr: %s", st.line, strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
			if args[1] == "up" {
				ups = append(ups, r.stdout)
			}
		}
		for _, out := range ups {
			if !strings.Contains(out, "migrated from version 0 to 5") {
				t.Errorf("a README cutover db up printed %q, want 'migrated from version 0 to 5'", out)
			}
		}
		if len(ups) != len(databases) {
			t.Errorf("%d README cutover db up commands ran, want %d (SQLite and, when it answers, PostgreSQL)", len(ups), len(databases))
		}
	})

	if r := cut("db", "status", "--driver", "sqlite", "--database", "/nonexistent/app.db"); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("db status of a missing database: %+v, want exit 1 and the migrator's reason", r)
	}
	for driver, loc := range databases {
		t.Run(driver, func(t *testing.T) {
			db := []string{"--driver", driver, "--database", loc}
			r := cut(append([]string{"db", "up", "--source", src}, db...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "migrated from version 0 to 5") {
				t.Fatalf("db up: %+v, want exit 0 and 'migrated from version 0 to 5'", r)
			}
			r = cut(append([]string{"db", "status", "--source", src, "-o", "json"}, db...)...)
			var st dbAnswer
			var rep events.MigrationStatusReported
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || json.Unmarshal(st.Data, &rep) != nil || r.code != 0 ||
				st.Type != events.TypeMigrationStatusReported || rep.Version != 5 || rep.Dirty || rep.Applied != 3 || len(rep.Pending) != 0 || len(rep.Snapshots) != 1 {
				t.Fatalf("db status -o json: %+v (%+v), want version 5 clean, 3 applied, one snapshot", r, rep)
			}
			if r := cut(append([]string{"db", "snapshots"}, db...)...); r.code != 0 || !strings.Contains(r.stdout, rep.Snapshots[0].ID) {
				t.Errorf("db snapshots: %+v, want %s listed", r, rep.Snapshots[0].ID)
			}

			r = cut(append([]string{"db", "up", "--source", broken, "-o", "json"}, db...)...)
			var ans dbAnswer
			var failed events.MigrationFailed
			if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil || json.Unmarshal(ans.Data, &failed) != nil || r.code != 1 ||
				ans.Type != events.TypeMigrationFailed || failed.File != "0009_broken.up.sql" || failed.Version != 5 || !strings.HasPrefix(failed.State, "clean at version 5") {
				t.Errorf("db up of a failing file: %+v (%+v), want exit 1, migration.failed naming 0009_broken.up.sql, clean at 5", r, failed)
			}
			if r := cut(append([]string{"db", "up", "--source", broken}, db...)...); r.code != 1 || !strings.Contains(r.stdout, "FAILED: 0009_broken.up.sql: ") || !strings.Contains(r.stdout, "state: clean at version 5") {
				t.Errorf("db up of a failing file, text: %+v", r)
			}

			r = cut(append([]string{"db", "rollback", "--source", src, "--to", "1"}, db...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "rolled back from version 5 to 1 through down") {
				t.Errorf("db rollback: %+v, want exit 0, from 5 to 1 through down", r)
			}
			if r := cut(append([]string{"db", "rollback", "--to", "1"}, db...)...); r.code != 0 || !strings.Contains(r.stdout, "rolled back from version 1 to 1") {
				t.Errorf("db rollback to where it is: %+v", r)
			}
			// A rollback through the snapshot over a write made after it is
			// refused with the counts, unless --restore-anyway.
			r = cut(append([]string{"db", "up", "--source", src, "-o", "json"}, db...)...)
			var up events.MigrationCompleted
			if err := json.Unmarshal([]byte(r.stdout), &ans); err != nil || json.Unmarshal(ans.Data, &up) != nil || r.code != 0 || up.FromVersion != 1 || up.SnapshotID == "" {
				t.Fatalf("db up from 1: %+v (%+v), want exit 0 from version 1 with a snapshot", r, up)
			}
			writeItem(t, driver, loc)
			rb := append([]string{"db", "rollback", "--to", "1", "--snapshot", up.SnapshotID}, db...)
			items := "items"
			if driver == "postgres" {
				items = "public.items"
			}
			if r := cut(rb...); r.code != 1 || !strings.Contains(r.stdout, "refused: not restoring snapshot "+up.SnapshotID) ||
				!regexp.MustCompile(`(?m)^\s+`+regexp.QuoteMeta(items)+`\s+1\s+0\s+0\s`).MatchString(r.stdout) || !strings.Contains(r.stdout, "--restore-anyway") {
				t.Errorf("db rollback over a write after the snapshot: %+v, want exit 1, refused, the write counted and the restore-anyway choice", r)
			}
			if r := cut(append(rb, "--restore-anyway")...); r.code != 0 || !strings.Contains(r.stdout, "rolled back from version 5 to 1 through snapshot") {
				t.Errorf("db rollback --restore-anyway: %+v, want exit 0, from 5 to 1 through the snapshot", r)
			}
			if r := cut("db", "up", "--driver", driver, "--source", src); r.code != 2 || !strings.Contains(r.stderr, "--database is required") {
				t.Errorf("db up without --database: %+v, want a usage error", r)
			}
		})
	}
}

// readmeDbSteps returns the commands of the README's "Migrate a database
// by hand" block, continuation lines joined, optional parts ([...]) and
// comments dropped, split into words (single quotes kept together), with
// cutover's path reduced to "cutover".
func readmeDbSteps(t *testing.T) []sessionStep {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "**Migrate a database by hand**") })
	if start < 0 {
		t.Fatal("README.md has no **Migrate a database by hand** paragraph")
	}
	var out []sessionStep
	inBlock := false
	for i := start; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, "    ") {
			if inBlock && strings.TrimSpace(l) == "" {
				break
			}
			continue
		}
		inBlock = true
		line := i + 1
		cmd := strings.TrimSpace(l)
		for strings.HasSuffix(cmd, "\\") && i+1 < len(lines) {
			i++
			cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if c := strings.Index(cmd, "#"); c >= 0 {
			cmd = cmd[:c]
		}
		cmd = regexp.MustCompile(`\[[^]]*\]`).ReplaceAllString(cmd, "")
		cmd = strings.TrimSuffix(strings.TrimSpace(cmd), "&")
		var args []string
		for _, m := range regexp.MustCompile(`'[^']*'|\S+`).FindAllString(cmd, -1) {
			args = append(args, strings.Trim(m, "'"))
		}
		if len(args) == 0 {
			continue
		}
		args[0] = strings.TrimPrefix(args[0], "./bin/")
		out = append(out, sessionStep{line: line, args: args})
	}
	return out
}

// writeItem inserts a row into the items table of the database at loc.
func writeItem(t *testing.T, driver, loc string) {
	t.Helper()
	if driver == "postgres" {
		if out, err := exec.Command("psql", loc, "-c", "INSERT INTO items (id, name) VALUES (42, 'written after the snapshot')").CombinedOutput(); err != nil {
			t.Fatalf("insert: %v\n%s", err, out)
		}
		return
	}
	db, err := sql.Open("sqlite", loc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO items (id, name) VALUES (42, 'written after the snapshot')`); err != nil {
		t.Fatal(err)
	}
}
