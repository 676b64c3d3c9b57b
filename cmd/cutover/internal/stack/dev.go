package stack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// DevOptions are the flags of cutover dev.
type DevOptions struct {
	Data            string
	Listen          string
	Nodes           string
	HTTPAddr        string
	InventoryFile   string
	Debug           bool
	PGMethod        string
	PGDumpDir       string
	KeepSnapshots   int
	SignalRetention time.Duration
	Bus             *busflag.Flags
	NATS            DevNATS
	HTTP            *httpauth.Flags
	// Version is the version the node-updaters report (the binary's).
	Version string
}

// Dev runs cutover dev until ctx ends.
func Dev(ctx context.Context, out io.Writer, o DevOptions) error {
	log := newLogger(o.Debug)
	setup, err := o.Bus.Config(log)
	if err != nil {
		return err
	}
	switch o.PGMethod {
	case "auto", "template", "dump":
	default:
		return fmt.Errorf("--pg-snapshot-method %q: use auto, template or dump", o.PGMethod)
	}
	if o.KeepSnapshots < -1 || o.KeepSnapshots == 0 {
		return fmt.Errorf("--keep-snapshots %d: keep at least 1 snapshot per database, or -1 to keep all", o.KeepSnapshots)
	}
	if o.SignalRetention < 0 {
		return fmt.Errorf("--signal-retention %v: want a positive duration, e.g. 24h, or 0 to keep heartbeats and health signals for good", o.SignalRetention)
	}
	cfg := Config{DataDir: o.Data, NATSListen: o.Listen, HTTP: o.HTTPAddr, AgentVersion: o.Version, Logger: log, Setup: setup,
		PGSnapshotMethod: o.PGMethod, PGDumpDir: o.PGDumpDir, KeepSnapshots: o.KeepSnapshots, SignalRetention: auditor.RetentionOf(o.SignalRetention)}
	if o.InventoryFile != "" {
		inv, err := inventory.Load(o.InventoryFile)
		if err != nil {
			return err
		}
		cfg.Inventory = inv
	}
	if o.Nodes != "none" {
		cli, err := docker.Connect(ctx, 5*time.Second)
		if err != nil {
			log.Warn("no Docker engine reachable: running without node-updaters", "err", err)
			if o.Nodes != "auto" {
				// Named nodes still get their identities, for node-updaters
				// that run as their own processes (node-updater --node N).
				cfg.Nodes, _ = nodeNames(ctx, nil, o.Nodes)
			}
		} else {
			defer cli.Close()
			cfg.Docker = cli
			if cfg.Nodes, err = nodeNames(ctx, cli, o.Nodes); err != nil {
				return err
			}
		}
	}
	if cfg.HTTPAuth, err = o.HTTP.Resolve(); err != nil {
		return err
	}
	if cfg.HTTP != "" {
		if err := cfg.HTTPAuth.CheckListen(cfg.HTTP); err != nil {
			return fmt.Errorf("--http: %w", err)
		}
	}
	o.NATS.Insecure = o.HTTP.Insecure
	if err := o.NATS.Secure(&cfg); err != nil {
		return err
	}
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("cutover dev running", "nats", s.ClientURL(), "data", o.Data, "nodes", cfg.Nodes,
		"credentials", filepath.Join(o.Data, CredsDir), "cli", "finds its credentials there (set CUTOVER_DATA when --data is elsewhere)")
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
