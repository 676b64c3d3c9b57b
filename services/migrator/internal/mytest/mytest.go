// Package mytest gives the migrator's tests throwaway databases on the real
// MariaDB (or MySQL) server named by CUTOVER_TEST_MARIADB (e.g.
// mysql://cutover:cutover@127.0.0.1:3306/cutover; start one with
// scripts/mariadb-up.sh or make mariadb). Tests skip with the reason when it
// is unset or the server does not answer.
package mytest

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/services/migrator/internal/dbtest"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
)

// Env is the variable holding the server's URL.
const Env = "CUTOVER_TEST_MARIADB"

// Server returns the URL of the test server (its database part ignored), or
// skips tb.
func Server(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(Env)
	if u == "" {
		tb.Skipf("MariaDB tests skipped: %s is unset; run scripts/mariadb-up.sh and export %s=mysql://cutover:cutover@127.0.0.1:3306/cutover", Env, Env)
	}
	db := Open(tb, u, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Skipf("MariaDB tests skipped: the server at %s does not answer (%v); run scripts/mariadb-up.sh", Env, err)
	}
	return u
}

// NeedBackup skips tb where the mysql driver's backup method cannot run:
// no mariadb-backup, or no access to the server's data directory (it must
// run as root, or the server's user, on the server's machine).
func NeedBackup(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("mariadb-backup"); err != nil {
		tb.Skip("backup method skipped: mariadb-backup is not installed (scripts/mariadb-up.sh installs it)")
	}
	var dir string
	if err := Open(tb, Server(tb), "").QueryRow(`SELECT @@datadir`).Scan(&dir); err != nil {
		tb.Fatal(err)
	}
	if _, err := os.ReadDir(dir); err != nil {
		tb.Skipf("backup method skipped: it needs the server's data directory (run as root on its machine): %v", err)
	}
}

// Open opens a pool on database name ("" for none) of the server at u,
// closed at cleanup.
func Open(tb testing.TB, u, name string) *sql.DB {
	tb.Helper()
	cfg, err := mysql.ParseURL(u)
	if err != nil {
		tb.Fatalf("%s: %v", Env, err)
	}
	cfg.DBName = name
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	db := sql.OpenDB(c)
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// WithDatabase returns the URL u naming database name.
func WithDatabase(u, name string) string {
	p, _ := url.Parse(u)
	p.Path = "/" + name
	return p.String()
}

// NewDatabase creates an empty database with a unique name and returns its
// URL and a pool on it. At cleanup the database, and every database whose
// name starts with its name (restore scratch databases), is dropped.
func NewDatabase(tb testing.TB) (string, *sql.DB) {
	tb.Helper()
	u := Server(tb)
	admin := Open(tb, u, "")
	name := dbtest.UniqueName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("create test database %s: %v", name, err)
	}
	db := Open(tb, u, name)
	tb.Cleanup(func() {
		_ = db.Close()
		dbtest.DropAll(tb, admin, `SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ?`, name+"%",
			func(n string) string { return "DROP DATABASE IF EXISTS `" + n + "`" })
	})
	return WithDatabase(u, name), db
}
