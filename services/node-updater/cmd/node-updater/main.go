package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/inventory"
	nodeupdater "github.com/cutover-dev/cutover/services/node-updater"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// shutdownTimeout is how long the replacement in progress may run on after
// a stop signal.
const shutdownTimeout = 30 * time.Second

func main() {
	natsCfg := events.AddClientFlags(flag.CommandLine, os.Getenv)
	bus := busflag.Register(flag.CommandLine)
	node := flag.String("node", "", "node name (required): this updater manages the containers labelled dev.cutover.node=NAME")
	level := flag.String("log-level", "info", "log level: debug, info, warn or error")
	invFile := flag.String("inventory", "", "cutover inventory: also manage, by name, the containers it places on this node that carry no cutover label (containers kolla-ansible created); see cutover adopt")
	ackWait := flag.Duration("ack-wait", 30*time.Second, "how long NATS waits for a command's ack before redelivering it; after a crash the command in progress comes back once it has passed")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "node-updater: --log-level %q: want debug, info, warn or error\n", *level)
		os.Exit(2)
	}
	if *node == "" {
		fmt.Fprintln(os.Stderr, "node-updater: --node is required: name this host as the inventory does")
		flag.Usage()
		os.Exit(2)
	}
	cfg := nodeupdater.Config{Node: *node, AgentVersion: version(), AckWait: *ackWait}
	if *invFile != "" {
		adopt, err := adoptFrom(*invFile, *node)
		if err != nil {
			fmt.Fprintf(os.Stderr, "node-updater: --inventory: %v\n", err)
			os.Exit(2)
		}
		cfg.Adopt = adopt
	}
	// CUTOVER_CRASH_AFTER=<step> is for crash tests only: the process kills
	// itself with SIGKILL right after that step of a replacement, so tests
	// can prove recovery from a real kill -9 at a precise point.
	if step := os.Getenv("CUTOVER_CRASH_AFTER"); step != "" {
		cfg.AfterStep = func(done string) {
			if done == step {
				fmt.Fprintf(os.Stderr, "node-updater: CUTOVER_CRASH_AFTER=%s: killing myself with SIGKILL\n", step)
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "node-updater: --node: %v\n", err)
		os.Exit(2)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	setup, err := bus.Config(cfg.Logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, "node-updater:", err)
		os.Exit(2)
	}
	if err := run(*natsCfg, setup, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "node-updater:", err)
		os.Exit(1)
	}
}

func run(natsCfg events.ClientConfig, setup events.SetupConfig, cfg nodeupdater.Config) (err error) {
	log, node := cfg.Logger, cfg.Node
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, js, err := events.Connect(ctx, natsCfg, "cutover-node-updater-"+node, events.WithSetup(setup), events.WithLogger(log))
	if err != nil {
		return err
	}
	defer nc.Close()

	cli, err := docker.Connect(ctx, 10*time.Second)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, cli.Close()) }()

	u, err := nodeupdater.New(cfg, js, docker.New(cli))
	if err != nil {
		return err
	}
	if err := u.Start(ctx); err != nil {
		return err
	}
	log.Info("node-updater running", "node", node, "nats", events.RedactURL(natsCfg.URL), "docker", cli.DaemonHost())
	<-ctx.Done()
	log.Info("stopping: the replacement in progress gets a grace period", "grace", shutdownTimeout)
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelShutdown()
	return u.Close(shutdown)
}

// version is the module version the binary was built from, or "dev".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// adoptFrom returns the containers the inventory places on node, for
// Config.Adopt.
func adoptFrom(path, node string) (map[string]nodeupdater.Adopted, error) {
	inv, err := inventory.Load(path)
	if err != nil {
		return nil, err
	}
	if _, ok := inv.Nodes[node]; !ok {
		return nil, fmt.Errorf("%s has no node %q; name this host as the inventory does (nodes: %d)", path, node, len(inv.Nodes))
	}
	adopt := map[string]nodeupdater.Adopted{}
	for _, c := range inv.ContainersOf(node) {
		adopt[c.Name] = nodeupdater.Adopted{Service: c.Service, WorkloadHost: c.WorkloadHost}
	}
	return adopt, nil
}
