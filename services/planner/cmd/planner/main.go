// Command planner runs the cutover planner against a NATS JetStream server:
// the distributed deployment's way to run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

func main() {
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS server URL")
	scope := flag.String("scope", "default", "lock scope: one active upgrade per scope")
	debug := flag.Bool("debug", false, "log every event")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := run(*natsURL, *scope, log); err != nil {
		fmt.Fprintln(os.Stderr, "planner:", err)
		os.Exit(1)
	}
}

func run(natsURL, scope string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, js, err := events.Connect(ctx, natsURL, "cutover-planner")
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := planner.New(ctx, planner.Config{Scope: scope, Logger: log}, js)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	log.Info("planner running", "nats", natsURL)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Close(shutdown)
}
