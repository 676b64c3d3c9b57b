package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

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

// newControlCmds makes pause, resume, abort and rollback.
func newControlCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, action := range []string{events.ControlPause, events.ControlResume, events.ControlAbort, "rollback"} {
		cmds = append(cmds, newControlCmd(action))
	}
	return cmds
}

// newControlCmd publishes an operator's pause, resume, abort or rollback of
// one upgrade. The planner answers on the upgrade's status subject
// (cutover watch ID), or with dev.cutover.event.rejected when it refuses.
func newControlCmd(action string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     action + " ID [--reason TEXT]",
		Short:   controlUsage[action],
		Example: fmt.Sprintf("  cutover %s 019a7c3e --reason \"INC-123\"", action),
		Args:    exactArgs(1, "one upgrade id (printed by cutover apply), e.g. cutover "+action+" 019a…"),
	}
	nopts := natsFlags(cmd)
	reason := cmd.Flags().String("reason", "", "why, for the history (default: \"<action> by <user>\")")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runControl(cmd.Context(), action, args[0], *reason, nopts, cmd.OutOrStdout())
	}
	return cmd
}

func runControl(ctx context.Context, action, id, reason string, nopts *natsOptions, w io.Writer) error {
	by := envOr("USER", "operator")
	if reason == "" {
		reason = action + " by " + by
	}
	nc, js, err := nopts.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	u, err := planner.LoadUpgrade(ctx, js, id)
	if err != nil {
		return fmt.Errorf("%s upgrade %s: %w (check the id with cutover watch, or the --nats URL)", action, id, err)
	}
	e, err := controlEvent(u.ID, action, reason, by)
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
