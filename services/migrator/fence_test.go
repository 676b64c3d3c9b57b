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
	tg := targets()[1]
	drivers := tg.drivers(t)
	loc := tg.prepare(t, drivers["postgres"], 100)
	admin := pgtest.Admin(t)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	role := "fence_" + strings.TrimPrefix(name, "cutover_t_")
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
	appURL := u.String()
	app, err := sql.Open("pgx", appURL)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	app.SetMaxOpenConns(1)
	if _, err := app.Exec(`INSERT INTO audit_trail (body) VALUES ('before the run')`); err != nil {
		t.Fatal(err)
	}
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
