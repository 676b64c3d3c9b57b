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
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/sqlite"
	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

// shutdownTimeout bounds how long a stop waits for the event in hand and HTTP
// requests in flight.
const shutdownTimeout = 10 * time.Second

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "auditor:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("auditor", flag.ContinueOnError)
	natsURL := fs.String("nats", nats.DefaultURL, "NATS server `URL`")
	storePath := fs.String("store", "./cutover-audit.db", "SQLite history `file` (created when missing)")
	httpAddr := fs.String("http", "", "serve the dashboard and JSON API on this `address`, e.g. 127.0.0.1:8080 (default off)")
	watch := fs.Duration("watch", 10*time.Second, "health watch window after each wave")
	postWatch := fs.Duration("post-watch", 30*time.Second, "health watch window after the upgrade completed")
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := nats.Connect(*natsURL, nats.Name("cutover-auditor"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w (is the server running? set --nats)", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream on %s: %w", *natsURL, err)
	}
	if err := events.Setup(ctx, js, events.SetupConfig{}); err != nil {
		return err
	}

	store, err := sqlite.Open(ctx, *storePath)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()

	hub := auditor.NewHub(0, 0)
	a, err := auditor.New(auditor.Config{Logger: log, Hub: hub}, js, store)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	judge, err := verdict.NewWatcher(verdict.WatcherConfig{Logger: log, Judge: verdict.Config{Watch: *watch, PostWatch: *postWatch}}, js)
	if err != nil {
		_ = a.Close(context.Background())
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
		srv = &http.Server{Handler: auditor.NewDashboard(store, hub, log, nil), ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return baseCtx }}
		srv.RegisterOnShutdown(cancelRequests)
		go func() { httpErr <- srv.Serve(ln) }()
		log.Info("serving HTTP API", "addr", ln.Addr().String())
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
