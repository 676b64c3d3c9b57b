package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/busflag"
	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/docker"
	"github.com/cutover-dev/cutover/services/migrator/image"
	"github.com/cutover-dev/cutover/services/migrator/mysql"
	"github.com/cutover-dev/cutover/services/migrator/postgres"
	"github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// shutdownTimeout is how long a stop waits before it cancels the request in
// hand; a migration already running still finishes.
const shutdownTimeout = 10 * time.Second

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrator:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("migrator", flag.ContinueOnError)
	natsCfg := events.AddClientFlags(fs, os.Getenv)
	bus := busflag.Register(fs)
	var level slog.Level
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	keep := fs.Int("keep-snapshots", migrator.DefaultKeepSnapshots, "snapshots kept per database after a successful migration (-1: keep all)")
	requireDown := fs.Bool("require-down", false, "refuse migrations without a down file")
	pgMethod := fs.String("pg-snapshot-method", postgres.MethodAuto, "PostgreSQL snapshot `method`: auto (template, else pg_dump), template or dump")
	pgDumpDir := fs.String("pg-dump-dir", "", "`directory` of pg_dump snapshots (default $TMPDIR/cutover-pg-snapshots)")
	useDocker := fs.Bool("docker", false, "run command migrations (a one-off container from the service's new image, as Kolla's bootstrap) on the Docker engine of DOCKER_HOST or the local socket")
	myDumpDir := fs.String("mysql-dump-dir", "", "`directory` of mariadb-dump snapshots of MariaDB/MySQL databases (default $TMPDIR/cutover-mysql-snapshots)")
	dbFile := fs.String("databases", "", "YAML `FILE` of the databases this migrator may migrate, by id (the service name): ID: {driver: postgres, location: URL | location_file: FILE}; requests naming another are rejected")
	anyDB := fs.Bool("allow-any-database", false, "migrate whatever database location a request names (INSECURE: whoever can publish migration commands picks the database; for tests and single-user setups)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var databases map[string]migrator.AllowedDatabase
	switch {
	case *dbFile != "" && *anyDB:
		return errors.New("--databases and --allow-any-database exclude each other")
	case *dbFile != "":
		var err error
		if databases, err = loadDatabases(*dbFile); err != nil {
			return err
		}
	case !*anyDB:
		return errors.New("--databases FILE is required: the databases this migrator may migrate, by id (or --allow-any-database, insecure)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	setup, err := bus.Config(log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, js, err := events.Connect(ctx, *natsCfg, "cutover-migrator", events.WithSetup(setup), events.WithLogger(log))
	if err != nil {
		return err
	}
	defer nc.Close()

	var commands migrator.CommandRunner
	if *useDocker {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			return fmt.Errorf("connect to the Docker engine for command migrations: %w (set DOCKER_HOST, or drop --docker)", err)
		}
		defer cli.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			return fmt.Errorf("connect to the Docker engine for command migrations: %w (is it running? or drop --docker)", err)
		}
		commands = docker.New(cli)
	}
	m, err := migrator.New(migrator.Config{
		Logger: log,
		Drivers: map[string]migrator.Driver{
			"sqlite":   sqlite.Driver{},
			"postgres": postgres.Driver{Method: *pgMethod, DumpDir: *pgDumpDir},
			// One driver, two names: inventories say mariadb as often as mysql.
			"mysql":   mysql.Driver{DumpDir: *myDumpDir},
			"mariadb": mysql.Driver{DumpDir: *myDumpDir},
		},
		Images:        image.Fetcher{},
		Commands:      commands,
		KeepSnapshots: *keep,
		RequireDown:   *requireDown,
		Databases:     databases,
	}, js)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return m.Close(sctx)
}
