package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// controlUsage says what each operator control does, for -h.
var controlUsage = map[string]string{
	events.ControlPause:  "finish the wave in flight, then start nothing more until resume (keeps the scope lock)",
	events.ControlResume: "continue a paused upgrade, retrying what failed in the current step",
	events.ControlAbort:  "stop for good: nothing more is sent, nothing is rolled back, the scope lock is released",
	"rollback":           "return the nodes updated so far to their previous images, latest first, then the database",
}

func runPause(ctx context.Context, args []string) error {
	return runControl(ctx, events.ControlPause, args, os.Stdout)
}

func runResume(ctx context.Context, args []string) error {
	return runControl(ctx, events.ControlResume, args, os.Stdout)
}

func runAbort(ctx context.Context, args []string) error {
	return runControl(ctx, events.ControlAbort, args, os.Stdout)
}

func runRollback(ctx context.Context, args []string) error {
	return runControl(ctx, "rollback", args, os.Stdout)
}

// runControl publishes an operator's pause, resume, abort or rollback of
// one upgrade. The planner answers on the upgrade's status subject
// (cutover watch ID), or with dev.cutover.event.rejected when it refuses.
func runControl(ctx context.Context, action string, args []string, w io.Writer) error {
	fs := flag.NewFlagSet(action, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: cutover %s ID [--reason TEXT] [--nats URL]\n  %s\n", action, controlUsage[action])
		fs.PrintDefaults()
	}
	natsURL := fs.String("nats", envOr("CUTOVER_NATS", defaultNATS), "NATS server URL (env CUTOVER_NATS)")
	reason := fs.String("reason", "", "why, for the history (default: \"<action> by <user>\")")
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return fmt.Errorf("give one upgrade id (printed by cutover apply), e.g. cutover %s 019a…", action)
	}
	by := envOr("USER", "operator")
	if *reason == "" {
		*reason = action + " by " + by
	}
	nc, js, err := events.Connect(ctx, *natsURL, "cutover-cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	u, err := planner.LoadUpgrade(ctx, js, ids[0])
	if err != nil {
		return fmt.Errorf("%s upgrade %s: %w (check the id with cutover watch, or the --nats URL)", action, ids[0], err)
	}
	e, err := controlEvent(u.ID, action, *reason, by)
	if err != nil {
		return err
	}
	if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
		return fmt.Errorf("%s upgrade %s: %w", action, u.ID, err)
	}
	fmt.Fprintf(w, "%s of upgrade %s requested (event %s; the upgrade is %s); follow it with: cutover watch %s\n", action, u.ID, e.ID(), u.Phase, u.ID)
	return nil
}

// controlEvent builds the event an operator's control publishes.
func controlEvent(id, action, reason, by string) (events.Event, error) {
	var d events.Data
	switch action {
	case events.ControlPause, events.ControlResume, events.ControlAbort:
		d = events.UpgradeControlRequested{Action: action, Reason: reason, RequestedBy: by}
	case "rollback":
		d = events.RollbackRequested{Reason: reason, RequestedBy: by}
	default:
		return events.Event{}, errors.New("control action " + action + " is unknown; use pause, resume, abort or rollback")
	}
	return events.New(events.Source("cli", ""), d, events.WithUpgrade(id))
}
