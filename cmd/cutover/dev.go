package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/node-updater/testkit"
	"github.com/cutover-dev/cutover/services/planner/inventory"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	data := fs.String("data", ".cutover-data", "data directory (JetStream store, audit database); reuse it to carry on after a restart")
	listen := fs.String("nats-listen", "127.0.0.1:4222", "address of the embedded NATS server, for any NATS client on this machine")
	nodes := fs.String("nodes", "auto", "node-updaters to run on the local Docker engine: comma-separated names, auto (every dev.cutover.node label found), or none")
	httpAddr := fs.String("http", "", "serve the live dashboard and the history API on this address, e.g. 127.0.0.1:8080")
	invFile := fs.String("inventory", "", "inventory (YAML) giving the planner rollout settings, databases and drains")
	debug := fs.Bool("debug", false, "log every event")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	log := newLogger(*debug)
	cfg := stack.Config{DataDir: *data, NATSListen: *listen, HTTP: *httpAddr, AgentVersion: version, Logger: log}
	if *invFile != "" {
		inv, err := inventory.Load(*invFile)
		if err != nil {
			return err
		}
		cfg.Inventory = inv
	}
	if *nodes != "none" {
		cli, err := testkit.DockerAvailable(ctx)
		if err != nil {
			log.Warn("no Docker engine reachable: running without node-updaters", "err", err)
		} else {
			defer cli.Close()
			cfg.Docker = cli
			if cfg.Nodes, err = nodeNames(ctx, cli, *nodes); err != nil {
				return err
			}
		}
	}
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("cutover dev running", "nats", s.ClientURL(), "data", *data, "nodes", cfg.Nodes)
	<-ctx.Done()
	log.Info("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return s.Close(shutdown)
}

// nodeNames resolves --nodes: "auto" finds every node label on the engine.
func nodeNames(ctx context.Context, cli *client.Client, spec string) ([]string, error) {
	if spec != "auto" {
		var out []string
		for _, n := range strings.Split(spec, ",") {
			if n = strings.TrimSpace(n); n != "" {
				out = append(out, n)
			}
		}
		return out, nil
	}
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", events.LabelNode)})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range res.Items {
		if n := c.Labels[events.LabelNode]; n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

func newLogger(debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
