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
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner"
)

func main() {
	natsCfg := events.AddClientFlags(flag.CommandLine, os.Getenv)
	bus := busflag.Register(flag.CommandLine)
	// Every default lives in planner.Config: a flag left at zero takes it.
	scope := flag.String("scope", "", fmt.Sprintf("lock scope: one active upgrade per scope (default %q)", planner.DefaultScope))
	debug := flag.Bool("debug", false, "log every event")
	invFile := flag.String("inventory", "", "inventory YAML giving max_unavailable, role serial and dependencies (default: one instance at a time, no order)")
	deadline := flag.Duration("progress-deadline", 0, fmt.Sprintf("how long a wave waits for its nodes before failing (default %v)", planner.DefaultProgressDeadline))
	drainTimeout := flag.Duration("drain-timeout", 0, fmt.Sprintf("how long a step that restarts a workload host waits for dev.cutover.node.drained (default %v)", planner.DefaultDrainTimeout))
	verdictTimeout := flag.Duration("verdict-timeout", 0, fmt.Sprintf("how long a wave of an upgrade with wait_for_verdicts waits for the auditor's verdicts before the upgrade pauses; a release's verdict_timeout overrides it (default %v)", planner.DefaultVerdictTimeout))
	barrierTimeout := flag.Duration("barrier-timeout", 0, fmt.Sprintf("how long a contract migration waits for every instance on the new image before the upgrade pauses (default %v)", planner.DefaultBarrierTimeout))
	instance := flag.String("instance", "", "this replica's name in the leader lease (default host-pid-random)")
	leaseTTL := flag.Duration("lease-ttl", 0, fmt.Sprintf("a leader that has not refreshed its lease for this long is replaced by a standby (default %v)", planner.DefaultLeaseTTL))
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	setup, err := bus.Config(log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "planner:", err)
		os.Exit(2)
	}
	cfg := planner.Config{Scope: *scope, Logger: log, ProgressDeadline: *deadline, DrainTimeout: *drainTimeout, BarrierTimeout: *barrierTimeout, VerdictTimeout: *verdictTimeout, InstanceID: *instance, LeaseTTL: *leaseTTL}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "planner:", err)
		os.Exit(2)
	}
	if *invFile != "" {
		inv, err := inventory.Load(*invFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "planner:", err)
			os.Exit(1)
		}
		cfg.Inventory = inv
	}
	if err := run(*natsCfg, setup, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "planner:", err)
		os.Exit(1)
	}
}

func run(natsCfg events.ClientConfig, setup events.SetupConfig, cfg planner.Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, js, err := events.Connect(ctx, natsCfg, "cutover-planner", events.WithSetup(setup), events.WithLogger(log))
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := planner.New(ctx, cfg, js)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	log.Info("planner running", "nats", events.RedactURL(natsCfg.URL), "leading", p.Leading())
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Close(shutdown)
}
