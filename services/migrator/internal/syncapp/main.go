// Command syncapp is an OpenStack-shaped service for the migrator's command
// migration tests and demo-openstack: an identity-like HTTP service on
// MariaDB whose schema is migrated by its own `db-sync` sub-command (its own
// versioned steps, not golang-migrate files), as keystone-manage db_sync is.
// The tests build it as a static Linux binary and put it at /app in images.
//
//	app db-sync [--expand|--migrate|--contract]   migrate the schema (needs KOLLA_BOOTSTRAP)
//	app db-version                                 print the schema version
//	app online-data-migrations [--max-count N]     exit 1 while rows were migrated, 0 when none left
//	app serve [--listen ADDR]                      serve GET /healthz, POST/GET /users
//
// The database URL (mysql://user:password@host:port/db) is read from the
// config file /etc/syncapp/syncapp.conf (`connection = URL`), mounted into
// the container as Kolla mounts /etc/kolla/<service>/, or from
// SYNCAPP_CONFIG's file. Test knobs: SYNC_FAIL_AT=N makes step N fail after
// its DDL ran; SYNC_HANG=1 makes db-sync hang before any step.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// step is one schema change; phase is expand, migrate or contract.
type step struct {
	version int
	phase   string
	sql     string
}

// steps are the service's schema history: v1 has users(id, name); v2 adds
// display_name (expand), copies name into it (migrate) and makes it NOT
// NULL (contract).
var steps = []step{
	{1, "expand", `CREATE TABLE users (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`},
	{2, "expand", `ALTER TABLE users ADD COLUMN display_name VARCHAR(64) NULL`},
	{3, "migrate", `UPDATE users SET display_name = name WHERE display_name IS NULL`},
	{4, "contract", `ALTER TABLE users MODIFY display_name VARCHAR(64) NOT NULL`},
	{5, "expand", `CREATE TABLE projects (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL)`},
	{6, "expand", `ALTER TABLE users ADD COLUMN project_id BIGINT NULL`},
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: app db-sync|db-version|online-data-migrations|serve")
		os.Exit(2)
	}
	code, err := run(os.Args[1], os.Args[2:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
	}
	os.Exit(code)
}

func run(cmd string, args []string) (int, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	expand := fs.Bool("expand", false, "expand steps only")
	migrate := fs.Bool("migrate", false, "migrate steps only")
	contract := fs.Bool("contract", false, "contract steps only")
	maxCount := fs.Int("max-count", 50, "rows per online data migration run")
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	target := fs.Int("version", 0, "db-sync: stop at this version (0: the latest)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	conn, err := connection()
	if err != nil {
		return 2, err
	}
	// Like real tools, it says where it connects, password and all: the
	// migrator must redact it.
	fmt.Println("connecting to", conn)
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
			phase = "expand"
		case *migrate:
			phase = "migrate"
		case *contract:
			phase = "contract"
		}
		return dbSync(ctx, db, phase, *target)
	case "db-version":
		v, err := version(ctx, db)
		if err != nil {
			return 1, err
		}
		fmt.Println(v)
		return 0, nil
	case "online-data-migrations":
		return onlineData(ctx, db, *maxCount)
	case "serve":
		return serve(ctx, db, *listen)
	}
	return 2, fmt.Errorf("unknown command %q", cmd)
}

func connection() (string, error) {
	p := os.Getenv("SYNCAPP_CONFIG")
	if p == "" {
		p = "/etc/syncapp/syncapp.conf"
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("read config: %w (mount the service's config directory)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == "connection" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("config %s has no connection line", p)
}

func open(raw string) (*sql.DB, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	cfg := gomysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", u.Host, strings.TrimPrefix(u.Path, "/")
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.ParseTime = true
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(8)
	return db, nil
}

func version(ctx context.Context, db *sql.DB) (int, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS syncapp_version (version INT NOT NULL)`); err != nil {
		return 0, err
	}
	var v sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM syncapp_version`).Scan(&v); err != nil {
		return 0, err
	}
	return int(v.Int64), nil
}

func dbSync(ctx context.Context, db *sql.DB, phase string, target int) (int, error) {
	if os.Getenv("SYNC_HANG") == "1" {
		fmt.Println("db-sync: waiting for a lock that never comes")
		<-ctx.Done()
		return 1, ctx.Err()
	}
	failAt, _ := strconv.Atoi(os.Getenv("SYNC_FAIL_AT"))
	v, err := version(ctx, db)
	if err != nil {
		return 1, err
	}
	fmt.Println("db-sync: schema at version", v, "phase", phase)
	for _, s := range steps {
		if s.version <= v || (target > 0 && s.version > target) {
			continue
		}
		if phase != "" && s.phase != phase {
			// A later phase's step stops this phase: expand never runs
			// past the first migrate or contract step.
			break
		}
		if _, err := db.ExecContext(ctx, s.sql); err != nil {
			return 1, fmt.Errorf("step %d: %w", s.version, err)
		}
		if s.version == failAt {
			return 1, fmt.Errorf("step %d (%s): injected failure after its DDL ran", s.version, s.phase)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO syncapp_version (version) VALUES (?)`, s.version); err != nil {
			return 1, err
		}
		fmt.Println("db-sync: applied step", s.version, s.phase)
	}
	return 0, nil
}

// onlineData fills display_name in batches, as nova-manage db
// online_data_migrations: exit 1 when it migrated rows (run again), 0 when
// none were left, 2 on an error.
func onlineData(ctx context.Context, db *sql.DB, n int) (int, error) {
	res, err := db.ExecContext(ctx, `UPDATE users SET display_name = name WHERE display_name IS NULL LIMIT ?`, n)
	if err != nil {
		return 2, err
	}
	done, _ := res.RowsAffected()
	fmt.Println("online data migrations: migrated", done, "rows")
	if done > 0 {
		return 1, nil
	}
	return 0, nil
}

type user struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
}

func serve(ctx context.Context, db *sql.DB, listen string) (int, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if err := db.QueryRowContext(r.Context(), `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok", n)
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var u user
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil || u.Name == "" {
			http.Error(w, "want {\"name\": ...}", http.StatusBadRequest)
			return
		}
		res, err := db.ExecContext(r.Context(), `INSERT INTO users (name) VALUES (?)`, u.Name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		u.ID, _ = res.LastInsertId()
		_ = json.NewEncoder(w).Encode(u)
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		var u user
		if err := db.QueryRowContext(r.Context(), `SELECT id, name FROM users WHERE id = ?`, r.PathValue("id")).Scan(&u.ID, &u.Name); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(u)
	})
	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1, err
	}
	return 0, nil
}
