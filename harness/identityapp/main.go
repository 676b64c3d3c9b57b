// Command identityapp is the OpenStack-shaped service of `make
// demo-openstack` and of cutover's command migration end-to-end test: an
// identity-like HTTP service on MariaDB whose schema is migrated by its own
// `db-sync` sub-command, as keystone-manage db_sync migrates keystone's:
// versioned steps in the binary (not SQL files), each in a phase (expand,
// migrate, contract), run in a one-off bootstrap container of the new image
// (KOLLA_BOOTSTRAP set). One binary backs every release; the release, from
// the image's DEMO_VERSION, decides which steps it knows and which schema it
// serves:
//
//	v1  steps 1      items(id, name, written_by)
//	v2  steps 1-4    expand: display_name (nullable) and the domains table;
//	                 migrate: the default domain; online data migrations:
//	                 display_name of v1's rows, in batches; contract:
//	                 display_name NOT NULL
//	v3  steps 1-5    expand: the projects table, then a unique index on
//	                 items.written_by, which fails on any real data: a
//	                 db-sync that fails midway, the table committed
//
// Usage:
//
//	app [serve]                                     serve HTTP on DEMO_LISTEN
//	app health                                      the image's HEALTHCHECK
//	app db-sync [--expand|--migrate|--contract]     apply the release's steps (all, or one phase's)
//	app db-sync version | app db-version            print the schema version
//	app online-data-migrations [--max-count N]      exit 1 while it migrated rows, 0 when none were left, 2 on error
//
// Environment: DEMO_VERSION (the release, v1 by default), DEMO_LISTEN
// (default 127.0.0.1:8080), IDENTITY_CONFIG (default
// /etc/identity/identity.conf: a `connection = mysql://user:pass@host:port/db`
// line; the directory is mounted into the containers as Kolla mounts
// /etc/kolla/<service>/). Test knob: IDENTITY_HANG=1 makes db-sync hang
// before any step, as one waiting for a lock does.
//
// HTTP API (the items API of the load generator, as the demo app's):
//
//	GET  /healthz  200 "ok N" (N items) while the database answers
//	POST /items    {"id","name"}: 201 {"id","name","written_by"}, 409 when the id exists
//	GET  /items/ID {"id","name","written_by","read_by"}, 404 when absent
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/cutover-dev/cutover/harness/internal/itemapi"
)

// step is one versioned schema change of db-sync.
type step struct {
	version int
	phase   string
	stmts   []string
}

const (
	phaseExpand   = "expand"
	phaseMigrate  = "migrate"
	phaseContract = "contract"
)

// steps is the service's whole schema history; a release knows a prefix.
var steps = []step{
	{1, phaseExpand, []string{`CREATE TABLE items (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, written_by VARCHAR(16) NOT NULL)`}},
	{2, phaseExpand, []string{
		`ALTER TABLE items ADD COLUMN display_name VARCHAR(200) NULL`,
		`CREATE TABLE domains (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(64) NOT NULL)`,
	}},
	{3, phaseMigrate, []string{`INSERT IGNORE INTO domains (id, name) VALUES ('default', 'Default')`}},
	{4, phaseContract, []string{`ALTER TABLE items MODIFY display_name VARCHAR(200) NOT NULL`}},
	// A bug of v3: the index cannot be built on any table with two items
	// written by one release, and the table before it is committed by
	// then (MariaDB commits each DDL statement): a step that fails midway.
	{5, phaseExpand, []string{
		`CREATE TABLE projects (id BIGINT AUTO_INCREMENT PRIMARY KEY, domain_id VARCHAR(64) NOT NULL, name VARCHAR(64) NOT NULL)`,
		`ALTER TABLE items ADD UNIQUE INDEX items_one_per_writer (written_by)`,
	}},
}

// release is what one release knows: its last step, and the schema
// version it needs to serve (v2 reads and writes display_name).
type release struct {
	last, serves int
}

var releases = map[string]release{"v1": {1, 1}, "v2": {4, 2}, "v3": {5, 5}}

func main() {
	cmd, args := "serve", os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	code, err := run(cmd, args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
	}
	os.Exit(code)
}

func run(cmd string, args []string) (int, error) {
	rel := envOr("DEMO_VERSION", "v1")
	r, ok := releases[rel]
	if !ok {
		return 2, fmt.Errorf("DEMO_VERSION %q is not a release of this service (v1, v2 or v3)", rel)
	}
	listen := envOr("DEMO_LISTEN", "127.0.0.1:8080")
	if cmd == "health" {
		return probe(listen)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	expand := fs.Bool("expand", false, "db-sync: the expand steps only")
	migrate := fs.Bool("migrate", false, "db-sync: the migrate steps only")
	contract := fs.Bool("contract", false, "db-sync: the contract steps only")
	maxCount := fs.Int("max-count", 500, "online-data-migrations: rows per run")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if cmd == "db-sync" && fs.Arg(0) == "version" {
		cmd = "db-version"
	}
	conn, err := connection()
	if err != nil {
		return 2, err
	}
	// Like the real tools, it says where it connects, password and all:
	// the migrator redacts it from the events.
	fmt.Printf("%s %s: connecting to %s\n", rel, cmd, conn)
	db, err := open(conn)
	if err != nil {
		return 2, err
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch cmd {
	case "db-sync":
		if _, ok := os.LookupEnv("KOLLA_BOOTSTRAP"); !ok {
			return 3, errors.New("db-sync runs in a bootstrap container only: KOLLA_BOOTSTRAP is not set")
		}
		phase := ""
		switch {
		case *expand:
			phase = phaseExpand
		case *migrate:
			phase = phaseMigrate
		case *contract:
			phase = phaseContract
		}
		return dbSync(ctx, db, r.last, phase)
	case "db-version":
		v, err := schemaVersion(ctx, db)
		if err != nil {
			return 1, err
		}
		fmt.Println(v)
		return 0, nil
	case "online-data-migrations":
		return onlineData(ctx, db, *maxCount)
	case "serve":
		return serve(ctx, db, rel, r, listen)
	}
	return 2, fmt.Errorf("unknown command %q; want serve, health, db-sync, db-version or online-data-migrations", cmd)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// connection reads the database URL from the config file.
func connection() (string, error) {
	p := envOr("IDENTITY_CONFIG", "/etc/identity/identity.conf")
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("read config: %w (mount the service's config directory)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.TrimSpace(k) == "connection" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("config %s has no connection line", p)
}

func open(raw string) (*sql.DB, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse connection: %w", err)
	}
	cfg := gomysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(16)
	db.SetConnMaxLifetime(time.Minute)
	return db, nil
}

// schemaVersion is the last step applied (0 on an empty database).
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS identity_schema (version INT NOT NULL PRIMARY KEY)`); err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM identity_schema`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return int(v.Int64), nil
}

// dbSync applies the steps after the schema's version up to last; with a
// phase, only that phase's steps, stopping at the first step of another
// phase (an expand never runs past a migrate or contract step).
func dbSync(ctx context.Context, db *sql.DB, last int, phase string) (int, error) {
	if os.Getenv("IDENTITY_HANG") == "1" {
		fmt.Println("db-sync: waiting for a lock that never comes")
		<-ctx.Done()
		return 1, ctx.Err()
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return 1, err
	}
	fmt.Printf("db-sync: schema at version %d; this release knows %d (phase %q)\n", v, last, phase)
	for _, s := range steps {
		if s.version <= v || s.version > last {
			continue
		}
		if phase != "" && s.phase != phase {
			break
		}
		for _, q := range s.stmts {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return 1, fmt.Errorf("step %d (%s): %w", s.version, s.phase, err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO identity_schema (version) VALUES (?)`, s.version); err != nil {
			return 1, fmt.Errorf("record step %d: %w", s.version, err)
		}
		fmt.Printf("db-sync: applied step %d (%s)\n", s.version, s.phase)
	}
	return 0, nil
}

// onlineData fills display_name of the rows v1 wrote, n at a time, as nova-
// manage db online_data_migrations: exit 1 when it migrated rows (run it
// again), 0 when none were left, 2 on an error.
func onlineData(ctx context.Context, db *sql.DB, n int) (int, error) {
	res, err := db.ExecContext(ctx, `UPDATE items SET display_name = name WHERE display_name IS NULL LIMIT ?`, n)
	if err != nil {
		return 2, fmt.Errorf("online data migrations: %w", err)
	}
	done, _ := res.RowsAffected()
	fmt.Printf("online data migrations: %d rows migrated\n", done)
	if done > 0 {
		return 1, nil
	}
	return 0, nil
}

// item is the JSON of the items API.
type item struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WrittenBy string `json:"written_by,omitempty"`
	ReadBy    string `json:"read_by,omitempty"`
}

// serve answers the items API with the release's schema; it refuses to
// start on a schema older than the release needs.
func serve(ctx context.Context, db *sql.DB, rel string, r release, listen string) (int, error) {
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return 1, err
	}
	if v < r.serves {
		return 1, fmt.Errorf("release %s needs schema version %d, the database is at %d: run db-sync first", rel, r.serves, v)
	}
	insert := `INSERT INTO items (id, name, written_by) VALUES (?, ?, ?)`
	read := `SELECT id, name, written_by FROM items WHERE id = ?`
	if r.serves >= 2 {
		insert = `INSERT INTO items (id, name, written_by, display_name) VALUES (?, ?, ?, ?)`
		read = `SELECT id, COALESCE(display_name, name), written_by FROM items WHERE id = ?`
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, req *http.Request) {
		var n int
		if err := db.QueryRowContext(req.Context(), `SELECT COUNT(*) FROM items`).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok", n)
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, req *http.Request) {
		var it item
		if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&it); err != nil || it.ID == "" || it.Name == "" {
			http.Error(w, `want {"id": ..., "name": ...}`, http.StatusBadRequest)
			return
		}
		args := []any{it.ID, it.Name, rel}
		if r.serves >= 2 {
			args = append(args, it.Name)
		}
		_, err := db.ExecContext(req.Context(), insert, args...)
		var me *gomysql.MySQLError
		it.WrittenBy = rel
		itemapi.Created(w, it.ID, errors.As(err, &me) && me.Number == 1062, err, it)
	})
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, req *http.Request) {
		it := item{ReadBy: rel}
		err := db.QueryRowContext(req.Context(), read, req.PathValue("id")).Scan(&it.ID, &it.Name, &it.WrittenBy)
		itemapi.Found(w, req.PathValue("id"), err, it)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return 1, fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("%s serving on %s (schema %d)\n", rel, ln.Addr(), v)
	select {
	case err := <-done:
		return 1, fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return 1, fmt.Errorf("shut down: %w", err)
	}
	<-done
	return 0, nil
}

// probe is the HEALTHCHECK (the image has no shell): GET /healthz.
func probe(listen string) (int, error) {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return 2, fmt.Errorf("parse DEMO_LISTEN %q: %w", listen, err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz")
	if err != nil {
		return 1, fmt.Errorf("probe healthz: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 1, fmt.Errorf("probe healthz: status %d", resp.StatusCode)
	}
	return 0, nil
}
