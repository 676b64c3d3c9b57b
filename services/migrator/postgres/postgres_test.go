package postgres_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
	"github.com/cutover-dev/cutover/services/migrator/postgres"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

const rows = 3000

var open = dbtest.Open

// seed makes a database at version 1 of testdata/pg/ok holding rows users.
func seed(t *testing.T) (string, *sql.DB) {
	t.Helper()
	url, sdb := pgtest.NewDatabase(t)
	if err := open(t, postgres.Driver{}, url, "../testdata/pg/ok").Up(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(`INSERT INTO users (name) SELECT 'user' || i FROM generate_series(1, $1) i`, rows); err != nil {
		t.Fatal(err)
	}
	return url, sdb
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

var version = dbtest.Version

func TestOpenRefuses(t *testing.T) {
	cfg := pgtest.Server(t)
	missing := *cfg
	missing.Database = "cutover_no_such_db"
	cases := []struct{ name, url, want string }{
		{"missing database", pgtest.URL(&missing), "open postgres database postgres://" + cfg.Host + ":"},
		{"maintenance database", pgtest.URL(cfg), "is the maintenance database the migrator works from"},
		{"unreachable server", "postgres://cutover@127.0.0.1:1/app?sslmode=disable&connect_timeout=2", "check that the server runs and the URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := postgres.Driver{}.Open(t.Context(), c.url, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open(%s) err = %v, want %q", c.url, err, c.want)
			}
		})
	}
	_, err := postgres.Driver{}.Open(t.Context(), pgtest.URL(&missing), "")
	if want := "/cutover_no_such_db: it does not exist; check the URL (the migrator does not create databases)"; err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("Open(missing) err = %v, want suffix %q", err, want)
	}
}

func TestUpDownAndFailingFileRollsBack(t *testing.T) {
	url, sdb := seed(t)
	db := open(t, postgres.Driver{}, url, "../testdata/pg/ok")
	dbtest.Up(t, db, 4)
	applied, err := db.Applied(t.Context())
	if err != nil || len(applied) != 4 || applied[3].File != "0004_users_name.up.sql" || len(applied[3].SHA256) != 64 {
		t.Fatalf("Applied() = %+v, %v; want 4 rows", applied, err)
	}
	if err := db.Down(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if v, dirty := version(t, db); v != 1 || dirty {
		t.Fatalf("after Down(1): version %d dirty %v", v, dirty)
	}
	if applied, _ := db.Applied(t.Context()); len(applied) != 1 {
		t.Errorf("ledger after Down(1) = %+v, want only version 1", applied)
	}

	failing := open(t, postgres.Driver{}, url, "../testdata/pg/failing")
	err = failing.Up(t.Context(), 4)
	var step *migrator.StepError
	if !errors.As(err, &step) || step.File != "0003_broken.up.sql" || step.Version != 3 || !strings.Contains(step.Err.Error(), `relation "missing_table" does not exist`) {
		t.Fatalf("Up through a broken migration: err = %v, want a StepError on 0003_broken.up.sql", err)
	}
	if v, dirty := version(t, failing); v != 3 || !dirty {
		t.Fatalf("after the failed step: version %d dirty %v, want dirty at 3", v, dirty)
	}
	// The file ran in one implicit transaction: its first statement is undone too.
	if n := count(t, sdb, `SELECT count(*) FROM pg_tables WHERE tablename = 'audit_log'`); n != 0 {
		t.Errorf("audit_log exists after its file failed; want the whole file rolled back")
	}
}

func TestSnapshotAndRestore(t *testing.T) {
	for _, method := range []string{postgres.MethodTemplate, postgres.MethodDump} {
		t.Run(method, func(t *testing.T) {
			url, sdb := seed(t)
			drv := postgres.Driver{Method: method, DumpDir: t.TempDir()}
			db := open(t, drv, url, "../testdata/pg/ok")

			// A service holds a session on the database: the template copy
			// must end it, the dump must not need to.
			service, err := sdb.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer service.Close()

			snap := dbtest.Snapshot(t, db)
			if snap.Version != 1 || snap.Dirty || !strings.Contains(snap.ID, "_snap_") {
				t.Fatalf("Snapshot() = %+v", snap)
			}
			if method == postgres.MethodDump != strings.HasSuffix(snap.ID, ".pgdump") {
				t.Errorf("snapshot id %s does not match method %s", snap.ID, method)
			}
			err = service.PingContext(t.Context())
			if method == postgres.MethodTemplate && err == nil {
				t.Errorf("the service's session survived a template copy; PostgreSQL would have refused the copy")
			}
			if method == postgres.MethodDump && err != nil {
				t.Errorf("the service's session was ended by a dump: %v", err)
			}
			// New sessions are allowed again.
			if n := count(t, sdb, `SELECT count(*) FROM users`); n != rows {
				t.Fatalf("users = %d", n)
			}

			dbtest.Up(t, db, 4)
			if _, err := sdb.Exec(`INSERT INTO orders (user_id, total) VALUES (1, 10)`); err != nil {
				t.Fatal(err)
			}
			got, err := db.Restore(t.Context(), snap.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != snap.ID || got.Version != 1 {
				t.Errorf("Restore() = %+v", got)
			}
			if v, dirty := version(t, db); v != 1 || dirty {
				t.Fatalf("after restore: version %d dirty %v", v, dirty)
			}
			sdb = reopen(t, url) // the restore ended the service's sessions, as it must
			if n := count(t, sdb, `SELECT count(*) FROM users`); n != rows {
				t.Errorf("users after restore = %d, want %d", n, rows)
			}
			if n := count(t, sdb, `SELECT count(*) FROM pg_tables WHERE tablename IN ('orders')`); n != 0 {
				t.Errorf("orders exists after restoring a version-1 snapshot")
			}
			admin := pgtest.Admin(t)
			if n := count(t, admin, `SELECT count(*) FROM pg_database WHERE datname LIKE '%\_old\_%' OR datname LIKE '%\_new\_%'`); n != 0 {
				t.Errorf("%d aside databases left after restore", n)
			}

			// The replaced state is kept as a snapshot of its own, newest.
			list, err := db.Snapshots(t.Context())
			if err != nil || len(list) != 2 || list[1].ID != snap.ID {
				t.Fatalf("Snapshots() = %+v, %v; want the replaced state then %s", list, err, snap.ID)
			}
			kept, err := db.Inspect(t.Context(), list[0].ID)
			if err != nil || kept.Version != 4 || kept.Dirty {
				t.Errorf("kept replaced state = %+v, %v; want clean version 4", kept, err)
			}
			keptDB := reopen(t, strings.Replace(url, "/"+dbName(url)+"?", "/"+kept.ID+"?", 1))
			if n := count(t, keptDB, `SELECT count(*) FROM orders`); n != 1 {
				t.Errorf("orders in the kept replaced state = %d, want the 1 written after the snapshot", n)
			}
			keptDB.Close()
			for _, s := range list {
				if err := db.DropSnapshot(t.Context(), s.ID); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Inspect(t.Context(), snap.ID); !errors.Is(err, migrator.ErrSnapshotNotFound) {
				t.Errorf("Inspect after DropSnapshot: err = %v, want ErrSnapshotNotFound", err)
			}
			for _, id := range []string{"postgres", "other_snap_20250101T000000_000000", snap.ID} {
				if _, err := db.Restore(t.Context(), id); !errors.Is(err, migrator.ErrSnapshotNotFound) {
					t.Errorf("Restore(%q) err = %v, want ErrSnapshotNotFound", id, err)
				}
			}
		})
	}
}

// A realistic history: tables, enums, backfills, CREATE INDEX CONCURRENTLY
// alone in its file, triggers, a view and an expand/contract pair; it goes
// all the way up with data in it, and all the way down.
func TestRealisticSetUpAndDown(t *testing.T) {
	url, sdb := pgtest.NewDatabase(t)
	db := open(t, postgres.Driver{}, url, "../testdata/pg/realistic")
	ctx := t.Context()
	if err := db.Up(ctx, 6); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO users (name) SELECT 'User ' || i FROM generate_series(1, 2000) i`,
		`INSERT INTO projects (owner_id, name) SELECT id, 'p' || id FROM users`,
		`INSERT INTO instances (project_id, host) SELECT id, 'compute' || (id % 7) FROM projects`,
	} {
		if _, err := sdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	migs, err := db.Migrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 30 || migs[24].Phase != migrator.PhaseExpand || migs[26].Phase != migrator.PhaseContract || migs[26].Name != "users_drop_name" {
		t.Fatalf("Migrations() phases wrong: %+v", migs[24:28])
	}
	if err := db.Up(ctx, 30); err != nil {
		t.Fatal(err)
	}
	if n := count(t, sdb, `SELECT count(*) FROM quotas`); n != 6000 {
		t.Errorf("backfilled quotas = %d, want 6000", n)
	}
	if n := count(t, sdb, `SELECT count(*) FROM users WHERE email IS NULL OR display_name IS NULL`); n != 0 {
		t.Errorf("%d users not backfilled", n)
	}
	if n := count(t, sdb, `SELECT count(*) FROM pg_indexes WHERE indexname IN ('users_email_key', 'instances_host')`); n != 2 {
		t.Errorf("concurrent indexes: %d, want 2", n)
	}
	if err := db.Down(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if v, dirty := version(t, db); v != 0 || dirty {
		t.Fatalf("after Down(0): version %d dirty %v", v, dirty)
	}
	if n := count(t, sdb, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('schema_migrations', 'cutover_migrations')`); n != 0 {
		t.Errorf("%d tables left after going all the way down", n)
	}
	if n := count(t, sdb, `SELECT count(*) FROM pg_type WHERE typname = 'vm_state'`); n != 0 {
		t.Errorf("type vm_state left after going all the way down")
	}
}

func reopen(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// dbName returns the database name of a postgres URL.
func dbName(url string) string {
	rest := url[strings.LastIndex(url, "/")+1:]
	name, _, _ := strings.Cut(rest, "?")
	return name
}

// A pg_dump snapshot cut short by a crash leaves a temporary dump, or a
// label without its dump; the sweep removes those, and keeps whole dumps,
// other databases' files and unrelated files.
func TestSweepLeftovers(t *testing.T) {
	url, _ := seed(t)
	drv := postgres.Driver{Method: postgres.MethodDump, DumpDir: t.TempDir()}
	db := open(t, drv, url, "")
	snap := dbtest.Snapshot(t, db)
	dir := filepath.Dir(snap.Location)
	prefix := snap.ID[:strings.Index(snap.ID, "_snap_")+len("_snap_")]
	label, err := os.ReadFile(snap.Location + ".json")
	if err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(dir, prefix+"20260101T000000_000000.pgdump.tmp"),  // a dump never renamed
		filepath.Join(dir, prefix+"20260101T000001_000000.pgdump.json"), // a label without its dump
	}
	kept := []string{
		filepath.Join(dir, "notes.txt"),
		filepath.Join(dir, prefix+"x_snap_20260101T000000_000000.pgdump.tmp"), // a database named <db>_snap_x
	}
	for _, p := range leftovers[:1] {
		if err := os.WriteFile(p, []byte("half a dump"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(leftovers[1], label, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range kept {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed := dbtest.Sweep(t, db)
	if !slices.Equal(removed, leftovers) {
		t.Errorf("SweepLeftovers removed %v, want %v", removed, leftovers)
	}
	for _, p := range append(kept, snap.Location, snap.Location+".json") {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want it kept", p, err)
		}
	}
}

// dbMetaOf describes what belongs to database name rather than to its
// contents: owner, grants, settings (per database and per role in it),
// comment, connection limit.
func dbMetaOf(t *testing.T, admin *sql.DB, name string) string {
	t.Helper()
	var owner, acl, comment string
	var limit int
	if err := admin.QueryRow(`SELECT pg_get_userbyid(datdba), coalesce((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(datacl) a)::text, '(default)'), coalesce(shobj_description(oid, 'pg_database'), ''), datconnlimit
		FROM pg_database WHERE datname = $1`, name).Scan(&owner, &acl, &comment, &limit); err != nil {
		t.Fatal(err)
	}
	settings := dbtest.Strings(t, admin, `SELECT coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), '*') || ': ' || array_to_string(s.setconfig, '; ')
		FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 ORDER BY 1`, name)
	return fmt.Sprintf("owner=%s acl=%s comment=%q limit=%d settings=%v", owner, acl, comment, limit, settings)
}

// A restore keeps what belongs to the database rather than to its
// contents: grants (a REVOKE CONNECT FROM PUBLIC and the application role's
// grant), settings (search_path, statement_timeout, a role's work_mem in the
// database), comment and connection limit, with either snapshot method.
func TestRestoreKeepsGrantsAndSettings(t *testing.T) {
	for _, method := range []string{postgres.MethodTemplate, postgres.MethodDump} {
		t.Run(method, func(t *testing.T) {
			url, sdb := seed(t)
			name := dbName(url)
			admin := pgtest.Admin(t)
			role := "app_" + strings.TrimPrefix(name, "cutover_t_")
			for _, q := range []string{
				`CREATE ROLE ` + role + ` LOGIN`,
				`REVOKE CONNECT, TEMPORARY ON DATABASE ` + name + ` FROM PUBLIC`,
				`GRANT CONNECT ON DATABASE ` + name + ` TO ` + role,
				`GRANT CREATE ON DATABASE ` + name + ` TO ` + role + ` WITH GRANT OPTION`,
				`ALTER DATABASE ` + name + ` SET search_path TO app, public`,
				`ALTER DATABASE ` + name + ` SET statement_timeout TO '5s'`,
				`ALTER ROLE ` + role + ` IN DATABASE ` + name + ` SET work_mem TO '8MB'`,
				`COMMENT ON DATABASE ` + name + ` IS 'the application''s database'`,
				`ALTER DATABASE ` + name + ` CONNECTION LIMIT 50`,
			} {
				if _, err := admin.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			t.Cleanup(func() {
				_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
				rows, _ := admin.Query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, name+"%")
				var dbs []string
				for rows != nil && rows.Next() {
					var d string
					_ = rows.Scan(&d)
					dbs = append(dbs, d)
				}
				for _, d := range dbs {
					_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + d + ` WITH (FORCE)`)
				}
				_, _ = admin.Exec(`DROP ROLE IF EXISTS ` + role)
			})
			before := dbMetaOf(t, admin, name)
			sdb.Close()
			db := open(t, postgres.Driver{Method: method, DumpDir: t.TempDir()}, url, "../testdata/pg/ok")
			snap := dbtest.Snapshot(t, db)
			dbtest.Up(t, db, 4)
			dbtest.Restore(t, db, snap.ID)
			if after := dbMetaOf(t, admin, name); after != before {
				t.Errorf("after the restore:\n  %s\nbefore:\n  %s", after, before)
			}
		})
	}
}

// The default method disconnects nobody: with a session connected it copies
// with pg_dump and the session goes on; with none it copies with TEMPLATE,
// the fast way.
func TestAutoSnapshotKeepsConnectedSessions(t *testing.T) {
	url, sdb := seed(t)
	db := open(t, postgres.Driver{DumpDir: t.TempDir()}, url, "../testdata/pg/ok")
	service, err := sdb.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := service.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	snap := dbtest.Snapshot(t, db)
	var after int
	if err := service.QueryRowContext(t.Context(), `SELECT pg_backend_pid()`).Scan(&after); err != nil || after != pid {
		t.Fatalf("the service's session after the snapshot: pid %d, %v; want the same session (%d) alive", after, err, pid)
	}
	if !strings.HasSuffix(snap.ID, ".pgdump") {
		t.Errorf("snapshot %s with a session connected, want a pg_dump snapshot", snap.ID)
	}
	service.Close()
	sdb.Close()
	admin := pgtest.Admin(t)
	name := dbName(url)
	eventually := func() bool {
		for i := 0; i < 200; i++ {
			if count(t, admin, `SELECT count(*) FROM pg_stat_activity WHERE datname = '`+name+`'`) == 0 {
				return true
			}
			time.Sleep(25 * time.Millisecond)
		}
		return false
	}
	if !eventually() {
		t.Fatal("the service's sessions did not end")
	}
	snap, err = db.Snapshot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(snap.ID, ".pgdump") {
		t.Errorf("snapshot %s with no session connected, want a TEMPLATE copy", snap.ID)
	}
}
