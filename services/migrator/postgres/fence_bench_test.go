package postgres_test

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/migrator/internal/pgtest"
	"github.com/cutover-dev/cutover/services/migrator/postgres"
)

// BenchmarkFence measures what fence "connect" adds to a run, on a
// database of CUTOVER_BENCH_SIZE_MB (default 16) with 8 sessions of an
// application role connected: the fence (REVOKE CONNECT, the sessions
// ended and waited for) and its lifting (the grants given back), against
// the run's snapshot (the default auto method, which with no session left
// after the fence is the TEMPLATE copy; pg_dump when not fenced) taken in
// the same iteration. The application is out for the whole run: fence,
// snapshot, migrations and unfence.
func BenchmarkFence(b *testing.B) {
	loc, sdb := blobsDatabase(b)
	u, err := url.Parse(loc)
	if err != nil {
		b.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	role := "fence_" + strings.TrimPrefix(name, "cutover_t_")
	admin := pgtest.Admin(b)
	for _, q := range []string{`CREATE ROLE ` + role + ` LOGIN`, `GRANT CONNECT ON DATABASE ` + name + ` TO ` + role, `GRANT SELECT ON blobs TO ` + role} {
		db := admin
		if strings.HasPrefix(q, "GRANT SELECT") {
			db = sdb
		}
		if _, err := db.Exec(q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	b.Cleanup(func() {
		_, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
		_, _ = admin.Exec(`DROP ROLE IF EXISTS ` + role)
	})
	sdb.Close()
	u.User = url.User(role)
	appURL := u.String()
	// connect opens the application's 8 sessions and holds them.
	connect := func() *sql.DB {
		app, err := sql.Open("pgx", appURL)
		if err != nil {
			b.Fatal(err)
		}
		var conns []*sql.Conn
		for range 8 {
			c, err := app.Conn(b.Context())
			if err == nil {
				err = c.PingContext(b.Context())
			}
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		return app
	}

	var fence, unfence, fencedSnap, openSnap time.Duration
	for b.Loop() {
		for _, fenced := range []bool{false, true} {
			app := connect()
			app.SetMaxIdleConns(8)
			opened, err := postgres.Driver{DumpDir: b.TempDir()}.Open(b.Context(), loc, "")
			if err != nil {
				b.Fatal(err)
			}
			db := opened.(*postgres.Database)
			var lift func(context.Context) error
			if fenced {
				fence += timeIt(b, func() error { var err error; lift, err = db.Fence(b.Context(), postgres.FenceConnect); return err })
			}
			var id string
			d := timeIt(b, func() error { s, err := db.Snapshot(b.Context()); id = s.ID; return err })
			if fenced {
				fencedSnap += d
				unfence += timeIt(b, func() error { return lift(b.Context()) })
			} else {
				openSnap += d
			}
			if err := db.DropSnapshot(b.Context(), id); err != nil {
				b.Fatal(err)
			}
			app.Close()
		}
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(ms(fence), "fence-ms")
	b.ReportMetric(ms(unfence), "unfence-ms")
	b.ReportMetric(ms(fencedSnap), "fenced-snap-ms")
	b.ReportMetric(ms(openSnap), "unfenced-snap-ms")
	b.ReportMetric(float64(fence+unfence+fencedSnap)/float64(openSnap), "fenced/unfenced")
}
