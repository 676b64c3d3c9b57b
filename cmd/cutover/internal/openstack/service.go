// Package openstack holds what cutover's OpenStack-shaped scenario (make
// demo-openstack, internal/scenario) and the end-to-end tests of command
// migrations share: an identity-like service (the harness's identityapp) on
// a real MariaDB database whose schema its own `db-sync` sub-command
// migrates in one-off bootstrap containers of the new image, as Kolla runs
// keystone-manage db_sync: the service's database, its config directory,
// its migration commands and its first bootstrap.
package openstack

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/migrator"
	migmysql "github.com/cutover-dev/cutover/services/migrator/mysql"
)

// ConfMount is where the service's config directory is mounted in its
// containers (identityapp's default IDENTITY_CONFIG is ConfMount/identity.conf).
const ConfMount = "/etc/identity"

// Database is a database of its own for one run on a MariaDB server.
type Database struct {
	// Name is the database's name; URL locates it, password included;
	// Public is URL without the password (what may travel in events).
	Name, URL, Public string
	admin             *sql.DB
}

// CreateDatabase creates database name on the server at serverURL
// (mysql://user:password@host:port/anything).
func CreateDatabase(ctx context.Context, serverURL, name string) (*Database, error) {
	cfg, err := migmysql.ParseURL(serverURL)
	if err != nil {
		return nil, fmt.Errorf("parse the MariaDB URL: %w", err)
	}
	cfg.DBName = ""
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to MariaDB at %s: %w", cfg.Addr, err)
	}
	admin := sql.OpenDB(conn)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("create database %s on %s: %w (start the server with make mariadb)", name, cfg.Addr, err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("parse the MariaDB URL: %w", err)
	}
	u.Path, u.RawQuery = "/"+name, ""
	public := *u
	public.User = url.User(u.User.Username())
	return &Database{Name: name, URL: u.String(), Public: public.String(), admin: admin}, nil
}

// Drop drops the database and the scratch databases the migrator's
// restores made beside it (<name>_new_*, <name>_old_*).
func (d *Database) Drop(ctx context.Context) error {
	defer d.admin.Close()
	rows, err := d.admin.QueryContext(ctx, `SELECT schema_name FROM information_schema.schemata WHERE schema_name = ? OR LEFT(schema_name, ?) = ?`,
		d.Name, len(d.Name)+1, d.Name+"_")
	if err != nil {
		return fmt.Errorf("list the databases of %s: %w", d.Name, err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("list the databases of %s: %w", d.Name, err)
		}
		names = append(names, n)
	}
	rows.Close()
	var errs []error
	for _, n := range names {
		if _, err := d.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+n+"`"); err != nil {
			errs = append(errs, fmt.Errorf("drop database %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Open opens a pool on the database; the caller closes it.
func (d *Database) Open() (*sql.DB, error) {
	cfg, err := migmysql.ParseURL(d.URL)
	if err != nil {
		return nil, err
	}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", d.Name, err)
	}
	return sql.OpenDB(conn), nil
}

// WriteConf writes the service's config directory, dir/identity.conf with
// the database's connection (password included, as Kolla's config files
// hold it), readable by the containers' user.
func (d *Database) WriteConf(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the config directory: %w", err)
	}
	body := "[database]\nconnection = " + d.URL + "\n"
	if err := os.WriteFile(filepath.Join(dir, "identity.conf"), []byte(body), 0o644); err != nil {
		return fmt.Errorf("write the service's config: %w", err)
	}
	return nil
}

// Allowed is the migrator's allow-list entry of the database for service:
// the location with the password, kept out of the inventory and events.
func (d *Database) Allowed(service string) map[string]migrator.AllowedDatabase {
	return map[string]migrator.AllowedDatabase{service: {Driver: "mariadb", Location: d.URL}}
}

// Commands are the service's migration commands as an inventory names
// them: db-sync per phase, the online data migrations in batches of batch
// rows, the version command, the config directory conf mounted read-only
// and the host's network (the server listens on 127.0.0.1).
func Commands(conf string, batch int, timeout time.Duration) *inventory.DatabaseCommands {
	return &inventory.DatabaseCommands{
		Expand:     []string{"db-sync", "--expand"},
		Migrate:    []string{"db-sync", "--migrate"},
		OnlineData: []string{"online-data-migrations", "--max-count", fmt.Sprint(batch)},
		Contract:   []string{"db-sync", "--contract"},
		Version:    []string{"db-sync", "version"},
		Mounts:     []string{conf + ":" + ConfMount + ":ro"},
		Network:    "host",
		Timeout:    timeout.String(),
	}
}

// Bootstrap deploys the release of image on the empty database, as a
// first kolla-ansible deploy does: db-sync in a one-off bootstrap container.
func Bootstrap(ctx context.Context, runner migrator.CommandRunner, image, conf, label string) error {
	out, err := runner.Run(ctx, migrator.CommandSpec{
		Name: label + "-bootstrap", Image: image, Command: []string{"db-sync"}, Env: []string{migrator.BootstrapEnv + "="},
		Mounts: []string{conf + ":" + ConfMount + ":ro"}, Network: "host", Timeout: 2 * time.Minute, LogLines: 20,
		Labels: map[string]string{testkit.LabelTest: label},
	})
	if err != nil {
		return fmt.Errorf("bootstrap the database with %s: %w", image, err)
	}
	if out.ExitCode != 0 {
		return fmt.Errorf("bootstrap the database with %s: db-sync exited with %d: %s", image, out.ExitCode,
			urlPassword.ReplaceAllString(strings.Join(out.Log, " | "), "${1}xxxxx@"))
	}
	return nil
}

// urlPassword matches the password of a URL in a log line.
var urlPassword = regexp.MustCompile(`(://[^:/@\s]+:)[^@\s]+@`)

// SchemaVersion reads the last db-sync step applied.
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM identity_schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return int(v.Int64), nil
}
