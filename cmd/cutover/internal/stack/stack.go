// Package stack runs the whole of cutover in one process: an embedded NATS
// server with JetStream and the four services. `cutover dev` and the demo
// use it; a distributed deployment runs the same services separately.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
	"github.com/cutover-dev/cutover/services/auditor/metrics"
	auditsqlite "github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
	"github.com/cutover-dev/cutover/services/migrator"
	migdocker "github.com/cutover-dev/cutover/services/migrator/docker"
	migimage "github.com/cutover-dev/cutover/services/migrator/image"
	migmysql "github.com/cutover-dev/cutover/services/migrator/mysql"
	migpostgres "github.com/cutover-dev/cutover/services/migrator/postgres"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
	"github.com/cutover-dev/cutover/services/planner"
)

// Config configures the all-in-one stack.
type Config struct {
	// DataDir holds the JetStream store and the auditor's database.
	DataDir string
	// NATSListen is the embedded server's client address.
	NATSListen string
	// NATSConfigFile, when set, is the embedded server's configuration
	// file (the generated authorization, TLS).
	NATSConfigFile string
	// Client, when set, gives the connection config of an identity of the
	// generated authorization (natsauth): each service then connects on its
	// own identity, and JetStream() is the CLI's. Its URL is replaced by the
	// embedded server's. Without it every service shares one anonymous
	// connection.
	Client func(identity string) events.ClientConfig
	// Docker is the engine the node-updaters drive; nil runs none.
	Docker *client.Client
	// Nodes are the node names to run a node-updater for, on Docker; without
	// Docker they only get their NATS identities (node-updater-<node>).
	Nodes []string
	// HTTP serves the auditor's dashboard and API when set (host:port).
	HTTP string
	// HTTPAuth authenticates HTTP clients and serves TLS when configured.
	HTTPAuth httpauth.Config
	// Inventory, when set, gives the planner rollout settings, databases and
	// drains (planner --inventory), and the node-updaters the containers to
	// adopt by name (node-updater --inventory).
	Inventory *inventory.Inventory
	// AgentVersion is reported by the node-updaters.
	AgentVersion string
	// Logger receives every service's logs.
	Logger *slog.Logger
	// PGSnapshotMethod is the migrator's default PostgreSQL snapshot method
	// (postgres.MethodAuto when empty); an inventory's snapshot_method
	// overrides it per database.
	PGSnapshotMethod string
	// PGDumpDir holds the migrator's pg_dump snapshots (default
	// $TMPDIR/cutover-pg-snapshots).
	PGDumpDir string
	// MySQLDumpDir holds the migrator's mariadb-dump snapshots (default
	// $TMPDIR/cutover-mysql-snapshots).
	MySQLDumpDir string
	// Databases, when set, is the migrator's allow-list (migrator
	// --databases) instead of the inventory's databases: their locations
	// may carry credentials the inventory, which travels in events, must
	// not.
	Databases map[string]migrator.AllowedDatabase
	// KeepSnapshots is how many snapshots of each database the migrator
	// keeps (0: migrator.DefaultKeepSnapshots; -1: all).
	KeepSnapshots int
	// Setup sizes the stream and buckets (replicas, retention limits).
	Setup events.SetupConfig
	// SignalRetention is how long the auditor keeps heartbeats and health
	// signals (auditor.Config.SignalRetention: 0 the default, negative for good).
	SignalRetention time.Duration
}

// Stack is a running all-in-one cutover.
type Stack struct {
	server   *server.Server
	conn     *nats.Conn
	js       jetstream.JetStream
	client   func(identity string) events.ClientConfig
	conns    []*nats.Conn // the services' own connections, with Client
	connOpts []events.ConnectOption
	store    *auditsqlite.Store
	http     *http.Server
	closers  []func(context.Context) error // in start order; closed in reverse
	log      *slog.Logger
}

// Start runs NATS and every service. On error it stops what it started.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	s := &Stack{log: cfg.Logger, client: cfg.Client, connOpts: []events.ConnectOption{events.WithSetup(cfg.Setup), events.WithLogger(cfg.Logger)}}
	defer func() {
		if err != nil {
			_ = s.Close(context.WithoutCancel(ctx))
		}
	}()
	s.server, err = embednats.Start(embednats.Config{Listen: cfg.NATSListen, DataDir: filepath.Join(cfg.DataDir, "jetstream"), ConfigFile: cfg.NATSConfigFile})
	if err != nil {
		return nil, err
	}
	if cfg.Client != nil {
		s.conn, s.js, err = events.Connect(ctx, s.clientConfig("cli"), "cutover-cli", s.connOpts...)
	} else {
		s.conn, s.js, err = events.Connect(ctx, events.ClientConfig{URL: s.server.ClientURL()}, "cutover-dev", s.connOpts...)
	}
	if err != nil {
		return nil, err
	}
	auditJS, err := s.Connect(ctx, "auditor")
	if err != nil {
		return nil, err
	}
	migJS, err := s.Connect(ctx, "migrator")
	if err != nil {
		return nil, err
	}
	planJS, err := s.Connect(ctx, "planner")
	if err != nil {
		return nil, err
	}

	s.store, err = auditsqlite.Open(ctx, filepath.Join(cfg.DataDir, "audit.db"))
	if err != nil {
		return nil, err
	}
	// The health watcher judges signals during each wave's watch window.
	// It is built first because the metrics read its counters, starts after
	// the auditor and stops before it (closers run in reverse).
	watcher, err := verdict.NewWatcher(verdict.WatcherConfig{Logger: cfg.Logger.With("service", "auditor")}, auditJS)
	if err != nil {
		return nil, err
	}
	m := metrics.New(metrics.Config{JetStream: auditJS, Verdicts: watcher.Stats, Logger: cfg.Logger.With("service", "auditor")})
	if err := m.Seed(ctx, s.store); err != nil {
		return nil, err
	}
	hub := auditor.NewHub(0, 0)
	aud, err := auditor.New(auditor.Config{Logger: cfg.Logger, Hub: hub, Observers: []auditor.Observer{m}, SignalRetention: cfg.SignalRetention}, auditJS, s.store)
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx, aud.Start, aud.Close); err != nil {
		return nil, err
	}
	if err := s.start(ctx, watcher.Start, watcher.Close); err != nil {
		return nil, err
	}
	databases := cfg.Databases
	if databases == nil {
		// With an inventory the migrator migrates only its databases (by
		// service), as a deployed migrator with --databases does.
		databases = inventoryDatabases(cfg.Inventory)
	}
	migCfg := migrator.Config{
		Logger: cfg.Logger,
		Drivers: map[string]migrator.Driver{"sqlite": migsqlite.Driver{},
			"postgres": migpostgres.Driver{Method: cfg.PGSnapshotMethod, DumpDir: cfg.PGDumpDir},
			"mysql":    migmysql.Driver{DumpDir: cfg.MySQLDumpDir}, "mariadb": migmysql.Driver{DumpDir: cfg.MySQLDumpDir}},
		Images:        migimage.Fetcher{},
		KeepSnapshots: cfg.KeepSnapshots,
		Databases:     databases,
	}
	if cfg.Docker != nil {
		// Command migrations (OpenStack's db_sync) run in one-off
		// containers on the same engine, as migrator --docker runs them.
		migCfg.Commands = migdocker.New(cfg.Docker)
	}
	mig, err := migrator.New(migCfg, migJS)
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx, mig.Start, mig.Close); err != nil {
		return nil, err
	}
	// A fixed instance id: a dev stack restarted after a crash holds the
	// planner's lease at once instead of waiting for its own to expire.
	plan, err := planner.New(ctx, planner.Config{Logger: cfg.Logger, InstanceID: "cutover-dev", Inventory: cfg.Inventory}, planJS)
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx, plan.Start, plan.Close); err != nil {
		return nil, err
	}
	if cfg.Docker != nil {
		rt := docker.New(cfg.Docker)
		for _, node := range cfg.Nodes {
			js, err := s.Connect(ctx, "node-updater-"+node)
			if err != nil {
				return nil, err
			}
			ucfg := nodeupdater.Config{Node: node, AgentVersion: cfg.AgentVersion, Logger: cfg.Logger.With("service", "node-updater")}
			if cfg.Inventory != nil {
				// Manage by name what the inventory places on the node,
				// labelled or not (kolla-ansible's containers).
				for _, c := range cfg.Inventory.ContainersOf(node) {
					if ucfg.Adopt == nil {
						ucfg.Adopt = map[string]nodeupdater.Adopted{}
					}
					ucfg.Adopt[c.Name] = nodeupdater.Adopted{Service: c.Service, WorkloadHost: c.WorkloadHost}
				}
			}
			u, err := nodeupdater.New(ucfg, js, rt)
			if err != nil {
				return nil, err
			}
			if err := s.start(ctx, u.Start, u.Close); err != nil {
				return nil, err
			}
		}
	}
	if cfg.HTTP != "" {
		ln, err := net.Listen("tcp", cfg.HTTP)
		if err != nil {
			return nil, fmt.Errorf("listen for the auditor API on %s: %w", cfg.HTTP, err)
		}
		// Server-Sent Events requests end on Shutdown instead of holding it up.
		baseCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
		s.http = &http.Server{
			Handler:           cfg.HTTPAuth.Wrap(auditor.NewDashboard(s.store, hub, cfg.Logger.With("service", "dashboard"), map[string]http.Handler{"GET /metrics": m.Handler()})),
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return baseCtx },
		}
		s.http.RegisterOnShutdown(cancelRequests)
		go func() {
			if err := cfg.HTTPAuth.Serve(s.http, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("auditor API stopped", "err", err)
			}
		}()
		s.closers = append(s.closers, s.http.Shutdown)
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context, start, close func(context.Context) error) error {
	if err := start(ctx); err != nil {
		return err
	}
	s.closers = append(s.closers, close)
	return nil
}

// inventoryDatabases is the migrator's allow-list from an inventory: each
// service's database under the service's name. Nil without an inventory.
func inventoryDatabases(inv *inventory.Inventory) map[string]migrator.AllowedDatabase {
	if inv == nil {
		return nil
	}
	out := map[string]migrator.AllowedDatabase{}
	for name, svc := range inv.Services {
		if svc.Database != nil {
			out[name] = migrator.AllowedDatabase{Driver: svc.Database.Driver, Location: svc.Database.URL}
		}
	}
	return out
}

// clientConfig is an identity's connection config to the embedded server.
func (s *Stack) clientConfig(identity string) events.ClientConfig {
	c := s.client(identity)
	c.URL = s.server.ClientURL()
	return c
}

// Connect returns the JetStream connection of an identity (node-updater-n1,
// planner, ...): its own connection when the stack runs with Config.Client,
// else the shared one. Close closes it.
func (s *Stack) Connect(ctx context.Context, identity string) (jetstream.JetStream, error) {
	if s.client == nil {
		return s.js, nil
	}
	nc, js, err := events.Connect(ctx, s.clientConfig(identity), "cutover-"+identity, s.connOpts...)
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, nc)
	return js, nil
}

// ClientURL is the embedded NATS server's URL.
func (s *Stack) ClientURL() string { return s.server.ClientURL() }

// JetStream returns the stack's JetStream handle.
func (s *Stack) JetStream() jetstream.JetStream { return s.js }

// Store returns the auditor's history store.
func (s *Stack) Store() *auditsqlite.Store { return s.store }

// Close stops the services in reverse start order (each finishing the event
// in progress until ctx is done), then NATS.
func (s *Stack) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i](ctx))
	}
	s.closers = nil
	if s.store != nil {
		errs = append(errs, s.store.Close())
		s.store = nil
	}
	for _, nc := range s.conns {
		nc.Close()
	}
	s.conns = nil
	if s.conn != nil {
		s.conn.Close()
	}
	if s.server != nil {
		s.server.Shutdown()
		s.server.WaitForShutdown()
	}
	return errors.Join(errs...)
}
