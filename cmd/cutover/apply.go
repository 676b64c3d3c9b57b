package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner/manifest"
)

const defaultNATS = "nats://127.0.0.1:4222"

func runApply(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	file := fs.String("f", "", "release manifest (YAML)")
	natsURL := fs.String("nats", envOr("CUTOVER_NATS", defaultNATS), "NATS server URL (env CUTOVER_NATS)")
	watch := fs.Bool("watch", false, "follow the upgrade until it ends; exit 0 only if it completed")
	if err := fs.Parse(args); err != nil {
		return exitError{2}
	}
	if *file == "" {
		return errors.New("-f is required: the release manifest to apply, e.g. cutover apply -f release.yaml")
	}
	req, err := manifest.Load(*file)
	if err != nil {
		return err
	}
	req.RequestedBy = "cutover apply"
	nc, js, err := events.Connect(ctx, *natsURL, "cutover-cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	e, err := events.New(events.Source("cli", ""), req)
	if err != nil {
		return err
	}
	if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
		return err
	}
	fmt.Println(e.ID())
	if !*watch {
		return nil
	}
	return follow(ctx, js, e.ID(), os.Stdout, nil)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
