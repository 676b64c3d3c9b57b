package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/cutover-dev/cutover/services/auditor/postgres"
	"github.com/cutover-dev/cutover/services/auditor/storetest"
)

// EnvTestPostgres names the server the tests use: a URL whose user may
// create databases, e.g.
// postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable.
const EnvTestPostgres = "CUTOVER_TEST_POSTGRES"

// newDatabase creates a throwaway database, dropped at the end of the
// test, and returns its URL.
func newDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv(EnvTestPostgres)
	if admin == "" {
		t.Skipf("PostgreSQL tests skipped: set %s to a server URL whose user may create databases, e.g. postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable", EnvTestPostgres)
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvTestPostgres, err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	name := fmt.Sprintf("cutover_audit_test_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database %s on %s: %v", name, u.Redacted(), err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	return storetest.Open(t, func(ctx context.Context) (*postgres.Store, error) { return postgres.Open(ctx, dsn) })
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return open(t, newDatabase(t)) })
}

// TestReopenKeepsHistory opens the same database twice: the second Open
// finds the schema at the latest version and the events kept.
func TestReopenKeepsHistory(t *testing.T) {
	dsn := newDatabase(t)
	storetest.ReopenKeepsHistory(t, func(ctx context.Context) (storetest.ClosingStore, error) { return postgres.Open(ctx, dsn) })
}

func TestOpenUnreachable(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://cutover:secret@127.0.0.1:1/nope?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "check the server is running") {
		t.Errorf("error %q: want the password hidden and a hint", err)
	}
}
