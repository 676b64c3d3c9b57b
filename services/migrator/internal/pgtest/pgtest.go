// Package pgtest gives the migrator's tests throwaway databases on the real
// PostgreSQL server named by CUTOVER_TEST_POSTGRES (e.g.
// postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable; start one with
// scripts/postgres-up.sh). Tests skip with the reason when it is unset or
// the server does not answer.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
)

// Env is the variable holding the server's URL.
const Env = "CUTOVER_TEST_POSTGRES"

// Server returns the URL of the test server, or skips tb.
func Server(tb testing.TB) *pgx.ConnConfig {
	tb.Helper()
	u := os.Getenv(Env)
	if u == "" {
		tb.Skipf("PostgreSQL tests skipped: %s is unset; run scripts/postgres-up.sh and export %s=postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable", Env, Env)
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		tb.Fatalf("%s=%q: %v", Env, u, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		tb.Skipf("PostgreSQL tests skipped: the server at %s=%s does not answer (%v); run scripts/postgres-up.sh", Env, u, err)
	}
	_ = c.Close(ctx)
	return cfg
}

// Admin opens a pool on the server's maintenance database, closed at cleanup.
func Admin(tb testing.TB) *sql.DB {
	tb.Helper()
	db := stdlib.OpenDB(*Server(tb))
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// NewDatabase creates an empty database with a unique name and returns its
// URL and a pool on it. At cleanup the pool is closed and the database, and
// every database whose name starts with its name (its snapshots), dropped.
func NewDatabase(tb testing.TB) (string, *sql.DB) {
	tb.Helper()
	cfg := Server(tb)
	admin := Admin(tb)
	name := dbtest.UniqueName()
	if _, err := admin.Exec(`CREATE DATABASE ` + name); err != nil {
		tb.Fatalf("create test database %s: %v", name, err)
	}
	c := cfg.Copy()
	c.Database = name
	db := stdlib.OpenDB(*c)
	tb.Cleanup(func() {
		_ = db.Close()
		dbtest.DropAll(tb, admin, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, name,
			func(n string) string { return fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, n) })
	})
	return URL(c), db
}

// URL renders cfg as a postgres:// URL.
func URL(c *pgx.ConnConfig) string {
	user := c.User
	if c.Password != "" {
		user += ":" + c.Password
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", user, c.Host, c.Port, strings.TrimPrefix(c.Database, "/"))
}
