package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// devOptions holds the flags of cutover dev.
type devOptions struct {
	data     string
	listen   string
	nodes    string
	httpAddr string
	invFile  string
	debug    bool
	pgMethod string
	pgDump   string
	keep     int
	signals  time.Duration
	bus      *busflag.Flags
	nats     stack.DevNATS
	http     *httpauth.Flags
}

func newDevCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:     "dev [--nodes a,b|auto|none] [--http ADDR]",
		Short:   "run NATS, planner, migrator, auditor and node-updaters in one process",
		Example: "  cutover dev --http 127.0.0.1:8080\n  cutover dev --inventory inventory.yaml --nodes auto",
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&o.data, "data", defaultDataDir, "data directory (JetStream store, audit database); reuse it to carry on after a restart")
	cmd.Flags().StringVar(&o.listen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server, for any NATS client on this machine")
	cmd.Flags().StringVar(&o.nodes, "nodes", "auto", "node-updaters to run on the local Docker engine: comma-separated names, auto (every dev.cutover.node label found), or none")
	cmd.Flags().StringVar(&o.httpAddr, "http", "", "serve the live dashboard and the history API on this address, e.g. 127.0.0.1:8080")
	cmd.Flags().StringVar(&o.invFile, "inventory", "", "inventory (YAML) giving the planner rollout settings, databases and drains, and the node-updaters the containers to adopt by name")
	cmd.Flags().BoolVar(&o.debug, "debug", false, "log every event")
	cmd.Flags().StringVar(&o.pgMethod, "pg-snapshot-method", "auto", "how the migrator copies a PostgreSQL database before it changes: auto (TEMPLATE when no session is connected, pg_dump when one is: nobody is disconnected), template (fastest; terminates the database's sessions for the copy) or dump; an inventory's snapshot_method overrides it per database")
	cmd.Flags().StringVar(&o.pgDump, "pg-dump-dir", "", "`directory` of the migrator's pg_dump snapshots (default $TMPDIR/cutover-pg-snapshots)")
	cmd.Flags().IntVar(&o.keep, "keep-snapshots", 3, "snapshots the migrator keeps per database after a successful migration (-1: keep all)")
	cmd.Flags().DurationVar(&o.signals, "signal-retention", auditor.DefaultSignalRetention, "how long the auditor's history keeps heartbeats and health signals that carry no upgrade id; 0 keeps them for good (an upgrade's events are never deleted)")
	bus := flag.NewFlagSet("dev", flag.ContinueOnError)
	o.bus = busflag.Register(bus)
	cmd.Flags().AddGoFlagSet(bus)
	cmd.Flags().StringVar(&o.nats.TLSCert, "nats-tls-cert", "", "PEM certificate `FILE` of the embedded NATS server: clients must then use TLS (needed for a non-loopback --nats-listen)")
	cmd.Flags().StringVar(&o.nats.TLSKey, "nats-tls-key", "", "PEM private key `FILE` of --nats-tls-cert")
	httpFS := flag.NewFlagSet("dev-http", flag.ContinueOnError)
	o.http = httpauth.AddFlags(httpFS, os.Getenv)
	cmd.Flags().AddGoFlagSet(httpFS)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDev(cmd.Context(), cmd.OutOrStdout(), o)
	}
	return cmd
}

// runDev runs cutover dev until ctx ends.
func runDev(ctx context.Context, out io.Writer, o devOptions) error {
	log := newLogger(o.debug)
	setup, err := o.bus.Config(log)
	if err != nil {
		return err
	}
	switch o.pgMethod {
	case "auto", "template", "dump":
	default:
		return fmt.Errorf("--pg-snapshot-method %q: use auto, template or dump", o.pgMethod)
	}
	if o.keep < -1 || o.keep == 0 {
		return fmt.Errorf("--keep-snapshots %d: keep at least 1 snapshot per database, or -1 to keep all", o.keep)
	}
	if o.signals < 0 {
		return fmt.Errorf("--signal-retention %v: want a positive duration, e.g. 24h, or 0 to keep heartbeats and health signals for good", o.signals)
	}
	cfg := stack.Config{DataDir: o.data, NATSListen: o.listen, HTTP: o.httpAddr, AgentVersion: version, Logger: log, Setup: setup,
		PGSnapshotMethod: o.pgMethod, PGDumpDir: o.pgDump, KeepSnapshots: o.keep, SignalRetention: auditor.RetentionOf(o.signals)}
	if o.invFile != "" {
		inv, err := inventory.Load(o.invFile)
		if err != nil {
			return err
		}
		cfg.Inventory = inv
	}
	if o.nodes != "none" {
		cli, err := docker.Connect(ctx, 5*time.Second)
		if err != nil {
			log.Warn("no Docker engine reachable: running without node-updaters", "err", err)
			if o.nodes != "auto" {
				// Named nodes still get their identities, for node-updaters
				// that run as their own processes (node-updater --node N).
				cfg.Nodes, _ = nodeNames(ctx, nil, o.nodes)
			}
		} else {
			defer cli.Close()
			cfg.Docker = cli
			if cfg.Nodes, err = nodeNames(ctx, cli, o.nodes); err != nil {
				return err
			}
		}
	}
	if cfg.HTTPAuth, err = o.http.Resolve(); err != nil {
		return err
	}
	if cfg.HTTP != "" {
		if err := cfg.HTTPAuth.CheckListen(cfg.HTTP); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
	}
	o.nats.Insecure = o.http.Insecure
	if err := o.nats.Secure(&cfg); err != nil {
		return err
	}
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("cutover dev running", "nats", s.ClientURL(), "data", o.data, "nodes", cfg.Nodes,
		"credentials", filepath.Join(o.data, stack.CredsDir), "cli", "finds its credentials there (set CUTOVER_DATA when --data is elsewhere)")
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
