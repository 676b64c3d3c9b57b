package migrator_test

import (
	"database/sql"
	"net/url"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
)

// With fence "connect" no other role can write during the run: the
// application's session is ended and it cannot connect again until the run
// is over; afterwards it connects as before, with its grants back.
func TestFenceConnectKeepsWritersOutForTheRun(t *testing.T) {
	tg, drivers, loc, name, role, appURL, admin, app := fencedApp(t)
	var during error
	drv := &afterSnapshot{Driver: drivers["postgres"], fn: func() {
		c, err := sql.Open("pgx", appURL)
		if err == nil {
			during = c.Ping()
			_ = c.Close()
		}
	}}
	h := start(t, migrator.Config{Drivers: map[string]migrator.Driver{"postgres": drv}})
	fin, _ := h.final(h.request(events.MigrationRequested{Driver: "postgres", Database: loc, Source: tg.ok, Fence: "connect"}))
	if fin.Type() != events.TypeMigrationCompleted {
		t.Fatalf("answer %s: %s", fin.Type(), fin.Data())
	}
	if during == nil || !strings.Contains(during.Error(), "permission denied for database") {
		t.Errorf("the application connecting during the run: %v, want permission denied", during)
	}
	// The run is over: the application connects and writes again (its
	// pool's old session was ended by the fence).
	eventually(t, 10e9, "the application back", func() bool {
		_, err := app.Exec(`INSERT INTO audit_trail (body) VALUES ('after the run')`)
		return err == nil
	})
	var ok bool
	if err := admin.QueryRow(`SELECT has_database_privilege($1, $2, 'CONNECT') AND has_database_privilege('public', $2, 'CONNECT')`, role, name).Scan(&ok); err != nil || !ok {
		t.Errorf("CONNECT for %s and PUBLIC after the run: %v (%v), want both back", role, ok, err)
	}
}

// fencedApp prepares a PostgreSQL database of 100 rows with an
// application role of its own (CONNECT and every table privilege), and
// returns them with the URL the application connects with and its pool (one
// session, which has written a row).
func fencedApp(t *testing.T) (tg target, drivers map[string]migrator.Driver, loc, name, role, appURL string, admin, app *sql.DB) {
	t.Helper()
	tg = targets()[1]
	drivers = tg.drivers(t)
	loc = tg.prepare(t, drivers["postgres"], 100)
	admin = pgtest.Admin(t)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	name = strings.TrimPrefix(u.Path, "/")
	role = "fence_" + strings.TrimPrefix(name, "cutover_t_")
	for _, q := range []string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT CONNECT ON DATABASE ` + name + ` TO ` + role} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(t, tg.open(t, loc), `GRANT ALL ON ALL TABLES IN SCHEMA public TO `+role)
	mustExec(t, tg.open(t, loc), `GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO `+role)
	t.Cleanup(func() {
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
		_, _ = admin.Exec(`DROP OWNED BY ` + role)
		_, _ = admin.Exec(`DROP ROLE IF EXISTS ` + role)
	})
	u.User = url.User(role)
	app, err = sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Close() })
	app.SetMaxOpenConns(1)
	if _, err := app.Exec(`INSERT INTO audit_trail (body) VALUES ('before the run')`); err != nil {
		t.Fatal(err)
	}
	return tg, drivers, loc, name, role, u.String(), admin, app
}

// With fence "read-only" the application keeps reading during the run but
// cannot write: its open session is ended, the new one is read-only. After
// the run it writes again and the database has no setting left from the
// fence; a run that fails and restores the snapshot lifts it too.
func TestFenceReadOnlyLetsReadsThrough(t *testing.T) {
	tg, drivers, loc, name, _, appURL, admin, app := fencedApp(t)
	settings := func() string {
		var s string
		if err := admin.QueryRow(`SELECT coalesce(string_agg(c, ','), '') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
			WHERE d.datname = $1`, name).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, source := range []string{"testdata/pg/failing_nodown", tg.ok} {
		var read, write error
		var n int
		drv := &afterSnapshot{Driver: drivers["postgres"], fn: func() {
			// A new session: the pool's was ended by the fence.
			c, err := sql.Open("pgx", appURL)
			if err != nil {
				read = err
				return
			}
			defer c.Close()
			read = c.QueryRow(`SELECT COUNT(*) FROM audit_trail`).Scan(&n)
			_, write = c.Exec(`INSERT INTO audit_trail (body) VALUES ('during the run')`)
		}}
		h := start(t, migrator.Config{Drivers: map[string]migrator.Driver{"postgres": drv}})
		fin, _ := h.final(h.request(events.MigrationRequested{Driver: "postgres", Database: loc, Source: source, Fence: "read-only", RestoreAnyway: true}))
		if source == tg.ok && fin.Type() != events.TypeMigrationCompleted {
			t.Fatalf("%s: answer %s: %s", source, fin.Type(), fin.Data())
		}
		if f := as[events.MigrationFailed](t, fin); source != tg.ok && (fin.Type() != events.TypeMigrationFailed || f.Restore == nil || !f.Restore.Restored) {
			t.Fatalf("%s: answer %s: %s, want migration.failed, restored from the snapshot", source, fin.Type(), fin.Data())
		}
		if read != nil || n == 0 {
			t.Errorf("%s: the application reading during the run: %d rows, %v; want its rows read", source, n, read)
		}
		if write == nil || !strings.Contains(write.Error(), "read-only transaction") {
			t.Errorf("%s: the application writing during the run: %v, want a read-only transaction error", source, write)
		}
		// The fence is lifted after the answer.
		eventually(t, 10e9, "no setting left by the fence", func() bool { return settings() == "" })
		eventually(t, 10e9, "the application writing again", func() bool {
			_, err := app.Exec(`INSERT INTO audit_trail (body) VALUES ('after the run')`)
			return err == nil
		})
	}
}
