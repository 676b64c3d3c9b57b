package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
)

func newDevCmd() *cobra.Command {
	o := stack.DevOptions{Version: version}
	cmd := cli.RunCmd("dev [--nodes a,b|auto|none] [--http ADDR]",
		"run NATS, planner, migrator, auditor and node-updaters in one process",
		"  cutover dev --http 127.0.0.1:8080\n  cutover dev --inventory inventory.yaml --nodes auto",
		func(ctx context.Context, w io.Writer) error { return stack.Dev(ctx, w, o) })
	cmd.Flags().StringVar(&o.Data, "data", cli.DefaultDataDir, "data directory (JetStream store, audit database); reuse it to carry on after a restart")
	cmd.Flags().StringVar(&o.Listen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server, for any NATS client on this machine")
	cmd.Flags().StringVar(&o.Nodes, "nodes", "auto", "node-updaters to run on the local Docker engine: comma-separated names, auto (every dev.cutover.node label found), or none")
	cmd.Flags().StringVar(&o.HTTPAddr, "http", "", "serve the live dashboard and the history API on this address, e.g. 127.0.0.1:8080")
	cmd.Flags().StringVar(&o.InventoryFile, "inventory", "", "inventory (YAML) giving the planner rollout settings, databases and drains, and the node-updaters the containers to adopt by name")
	cmd.Flags().BoolVar(&o.Debug, "debug", false, "log every event")
	cmd.Flags().StringVar(&o.PGMethod, "pg-snapshot-method", "auto", "how the migrator copies a PostgreSQL database before it changes: auto (TEMPLATE when no session is connected, pg_dump when one is: nobody is disconnected), template (fastest; terminates the database's sessions for the copy) or dump; an inventory's snapshot_method overrides it per database")
	cmd.Flags().StringVar(&o.PGDumpDir, "pg-dump-dir", "", "`directory` of the migrator's pg_dump snapshots (default $TMPDIR/cutover-pg-snapshots)")
	cmd.Flags().IntVar(&o.KeepSnapshots, "keep-snapshots", 3, "snapshots the migrator keeps per database after a successful migration (-1: keep all)")
	cmd.Flags().DurationVar(&o.SignalRetention, "signal-retention", auditor.DefaultSignalRetention, "how long the auditor's history keeps heartbeats and health signals that carry no upgrade id; 0 keeps them for good (an upgrade's events are never deleted)")
	bus := flag.NewFlagSet("dev", flag.ContinueOnError)
	o.Bus = busflag.Register(bus)
	cmd.Flags().AddGoFlagSet(bus)
	cmd.Flags().StringVar(&o.NATS.TLSCert, "nats-tls-cert", "", "PEM certificate `FILE` of the embedded NATS server: clients must then use TLS (needed for a non-loopback --nats-listen)")
	cmd.Flags().StringVar(&o.NATS.TLSKey, "nats-tls-key", "", "PEM private key `FILE` of --nats-tls-cert")
	httpFS := flag.NewFlagSet("dev-http", flag.ContinueOnError)
	o.HTTP = httpauth.AddFlags(httpFS, os.Getenv)
	cmd.Flags().AddGoFlagSet(httpFS)
	return cmd
}
