package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
	"github.com/cutover-dev/cutover/services/auditor/metrics"
	"github.com/cutover-dev/cutover/services/auditor/notify"
	"github.com/cutover-dev/cutover/services/auditor/postgres"
	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

// shutdownTimeout bounds how long a stop waits for the event in hand and HTTP
// requests in flight.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditor:", err)
		os.Exit(1)
	}
}

// run runs the auditor until ctx is done (main: SIGINT or SIGTERM).
func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("auditor", flag.ContinueOnError)
	natsCfg := events.AddClientFlags(fs, os.Getenv)
	bus := busflag.Register(fs)
	storePath := fs.String("store", "./cutover-audit.db", "history store: a SQLite `file` (created when missing) or a postgres:// URL")
	httpAddr := fs.String("http", "", "serve the dashboard, JSON API and Prometheus /metrics on this `address`, e.g. 127.0.0.1:8080 (default off)")
	watch := fs.Duration("watch", 10*time.Second, "health watch window after each wave")
	postWatch := fs.Duration("post-watch", 30*time.Second, "health watch window after the upgrade completed")
	signalRetention := fs.Duration("signal-retention", auditor.DefaultSignalRetention,
		"how long the history keeps heartbeats and health signals that carry no upgrade id; 0 keeps them for good (an upgrade's events are never deleted)")
	var webhooks stringList
	fs.Var(&webhooks, "webhook", "POST chosen events to this `URL` (repeatable)")
	webhookTypes := fs.String("webhook-types", strings.Join(notify.DefaultTypes, ","),
		"comma-separated event `types` to POST to webhooks; dev.cutover.health.verdict:failing posts only failing verdicts")
	var policyFlags verdict.Policies
	fs.Var(&policyFlags, "policy", "health policy of a `service` (repeatable): SERVICE:consecutive=3,ratio=0.5,min_signals=4,min_healthy=0s,max_interruption=5s,action=rollback|report; SERVICE \"default\" judges services without one")
	policyFile := fs.String("policies", "", "read health policies from this YAML `file` (keys default and services); --policy flags override it per service")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	httpFlags := httpauth.AddFlags(fs, os.Getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *signalRetention < 0 {
		return fmt.Errorf("--signal-retention %v: want a positive duration, e.g. 24h, or 0 to keep heartbeats and health signals for good", *signalRetention)
	}
	httpCfg, err := httpFlags.Resolve()
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		if err := httpCfg.CheckListen(*httpAddr); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	setup, err := bus.Config(log)
	if err != nil {
		return err
	}
	var policies verdict.Policies
	if *policyFile != "" {
		data, err := os.ReadFile(*policyFile)
		if err != nil {
			return fmt.Errorf("read --policies file: %w", err)
		}
		if policies, err = verdict.ParsePoliciesYAML(data); err != nil {
			return fmt.Errorf("%s: %w", *policyFile, err)
		}
	}
	policies.Merge(policyFlags)

	nc, js, err := events.Connect(ctx, *natsCfg, "cutover-auditor", events.WithSetup(setup), events.WithLogger(log))
	if err != nil {
		return err
	}
	defer nc.Close()

	store, err := openStore(ctx, *storePath)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	judgeCfg := verdict.Config{Watch: *watch, PostWatch: *postWatch}
	policies.Apply(&judgeCfg)
	judge, err := verdict.NewWatcher(verdict.WatcherConfig{Logger: log, Judge: judgeCfg}, js)
	if err != nil {
		return err
	}
	mcfg := metrics.Config{JetStream: js, Verdicts: judge.Stats, Logger: log}
	observers := []auditor.Observer{}
	var notifier *notify.Notifier
	if len(webhooks) > 0 {
		filter, err := notify.ParseTypes(splitList(*webhookTypes))
		if err != nil {
			return fmt.Errorf("parse --webhook-types: %w", err)
		}
		notifier, err = notify.New(notify.Config{URLs: webhooks, Filter: filter, Logger: log})
		if err != nil {
			return fmt.Errorf("configure --webhook: %w", err)
		}
		if err := notifier.Open(); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := notifier.Close(sctx); err != nil {
				log.Error("stop webhooks", "err", err)
			}
		}()
		mcfg.Webhooks = notifier.Stats
		observers = append(observers, notifier)
	}
	m := metrics.New(mcfg)
	if err := m.Seed(ctx, store); err != nil {
		return err
	}
	observers = append(observers, m)

	hub := auditor.NewHub(0, 0)
	a, err := auditor.New(auditor.Config{Logger: log, Hub: hub, Observers: observers, SignalRetention: auditor.RetentionOf(*signalRetention)}, js, store)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	if err := judge.Start(ctx); err != nil {
		_ = a.Close(context.Background())
		return err
	}

	var srv *http.Server
	httpErr := make(chan error, 1)
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			_ = judge.Close(context.Background())
			_ = a.Close(context.Background())
			return fmt.Errorf("listen on %s for the HTTP API: %w (choose another --http address)", *httpAddr, err)
		}
		// Live (SSE) requests end when their context does: cancel every
		// request's context on Shutdown, or it would wait for the timeout.
		baseCtx, cancelRequests := context.WithCancel(context.Background())
		srv = &http.Server{Handler: httpCfg.Wrap(auditor.NewDashboard(store, hub, log, map[string]http.Handler{"GET /metrics": m.Handler()})), ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return baseCtx }}
		srv.RegisterOnShutdown(cancelRequests)
		go func() { httpErr <- httpCfg.Serve(srv, ln) }()
		log.Info("serving HTTP API", "addr", ln.Addr().String(), "tls", httpCfg.TLS(), "auth", httpCfg.Enabled())
	}

	var errs []error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case err := <-httpErr:
		errs = append(errs, fmt.Errorf("serve HTTP API on %s: %w", *httpAddr, err))
		srv = nil // already stopped
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if srv != nil {
		if err := srv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop HTTP API: %w", err))
		}
		if err := <-httpErr; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve HTTP API on %s: %w", *httpAddr, err))
		}
	}
	if err := judge.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	if err := a.Close(sctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// splitList splits a comma-separated flag value, ignoring empty entries.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// historyStore is what the auditor needs from either store.
type historyStore interface {
	auditor.Store
	auditor.History
	Close() error
}

// openStore opens the PostgreSQL store for a postgres:// or postgresql://
// URL, the SQLite store for anything else (a file path).
func openStore(ctx context.Context, spec string) (historyStore, error) {
	if strings.HasPrefix(spec, "postgres://") || strings.HasPrefix(spec, "postgresql://") {
		s, err := postgres.Open(ctx, spec)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	s, err := sqlite.Open(ctx, spec)
	if err != nil {
		return nil, err
	}
	return s, nil
}
