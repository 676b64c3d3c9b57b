package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/services/migrator"
	migmysql "github.com/cutover-dev/cutover/services/migrator/mysql"
)

// cutover snapshots list/prune on a MariaDB database (CUTOVER_TEST_MARIADB,
// started by make mariadb).
func TestSnapshotsOnMariaDB(t *testing.T) {
	server := os.Getenv("CUTOVER_TEST_MARIADB")
	if server == "" {
		t.Skip("MariaDB test skipped: CUTOVER_TEST_MARIADB is unset; run make mariadb and export CUTOVER_TEST_MARIADB=mysql://cutover:cutover@127.0.0.1:3306/cutover")
	}
	cfg, err := migmysql.ParseURL(server)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = ""
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin := sql.OpenDB(conn)
	name := fmt.Sprintf("cutover_cli_%d", time.Now().UnixNano()%1e9)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create test database %s on %s (run make mariadb): %v", name, cfg.Addr, err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	u, _ := url.Parse(server)
	u.Path = "/" + name
	dumps := t.TempDir()
	drv := migmysql.Driver{DumpDir: dumps}
	d, err := drv.Open(t.Context(), u.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Snapshot(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if r := runCLI(t.Context(), "snapshots", "list", "--driver", "mariadb", "--mysql-dump-dir", dumps, "--database", u.String()); r.code != 0 || strings.Count(r.stdout, "\n") != 3 || strings.Contains(r.stdout+r.stderr, ":cutover@") {
		t.Fatalf("snapshots list: %+v, want a header and 2 snapshots, no password", r)
	}
	if r := runCLI(t.Context(), "snapshots", "prune", "--driver", "mysql", "--mysql-dump-dir", dumps, "--database", u.String(), "--keep", "1"); r.code != 0 {
		t.Fatalf("snapshots prune: %+v", r)
	}
	if left, err := migrator.ListSnapshots(t.Context(), drv, u.String()); err != nil || len(left) != 1 {
		t.Fatalf("after prune --keep 1: %d snapshots (%v), want 1", len(left), err)
	}
}
