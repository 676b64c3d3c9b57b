package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
)

// controlUsage says what each operator control does, for -h.
var controlUsage = map[string]string{
	events.ControlPause:   "finish the wave in flight, then start nothing more until resume (keeps the scope lock)",
	events.ControlResume:  "continue a paused upgrade, retrying what failed in the current step",
	events.ControlAbort:   "stop for good: nothing more is sent, nothing is rolled back, the scope lock is released",
	events.ControlRetry:   "start a paused or rolled-back upgrade again from the step that failed",
	events.ControlPromote: "let a pause_after_canary upgrade go on past its canary wave",
	"rollback":            "return the nodes updated so far to their previous images, latest first, then the database",
}

// newControlCmds makes pause, resume, abort, rollback, retry and promote.
func newControlCmds() []*cobra.Command {
	var cmds []*cobra.Command
	for _, action := range []string{events.ControlPause, events.ControlResume, events.ControlAbort, "rollback", events.ControlRetry, events.ControlPromote} {
		cmds = append(cmds, newControlCmd(action))
	}
	return cmds
}

// newControlCmd sends an operator's control of one upgrade to the planner
// and waits for its answer: accepted (exit 0) or refused with the reason
// (exit 1); no answer within --timeout exits 1 too.
func newControlCmd(action string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   action + " ID|PREFIX|RELEASE [--reason TEXT]",
		Short: controlUsage[action],
		Long: controlUsage[action] + `.

The planner answers: accepted (exit 0), or refused with the reason (exit 1).
No answer within --timeout exits 1: check that a planner runs (cutover
watch shows its events). The upgrade is named by its id, a unique prefix of
it, or its release name when one upgrade has it.`,
		Example: fmt.Sprintf("  cutover %s 019a7c3e --reason \"INC-123\"", action),
		Args:    exactArgs(1, "one upgrade: its id, a unique prefix of it, or its release name"),
	}
	nopts := natsFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	reason := cmd.Flags().String("reason", "", "why, for the history (default: \"<action> by <user>\")")
	timeout := cmd.Flags().Duration("timeout", 30*time.Second, "how long to wait for the planner's answer")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runControl(cmd.Context(), action, args[0], *reason, *timeout, nopts, cmd.OutOrStdout())
	}
	return cmd
}

func runControl(ctx context.Context, action, arg, reason string, timeout time.Duration, nopts *natsOptions, w io.Writer) error {
	by := envOr("USER", "operator")
	if reason == "" {
		reason = action + " by " + by
	}
	nc, js, err := nopts.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	id, err := upgrades.Resolve(ctx, js, arg)
	if err != nil {
		return err
	}
	e, err := controlEvent(id, action, reason, by)
	if err != nil {
		return err
	}
	// Listen before asking, so the answer cannot come first.
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.UpgradeStatusSubject(id)}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("listen for the planner's answer: %w", err)
	}
	if err := events.NewPublisher(js).Publish(ctx, e); err != nil {
		return fmt.Errorf("%s upgrade %s: %w", action, id, err)
	}
	ans, err := awaitAnswer(ctx, cons, e.ID(), timeout)
	if err != nil {
		return fmt.Errorf("%s upgrade %s: %w", action, id, err)
	}
	if !ans.Accepted {
		return fmt.Errorf("%s upgrade %s: %s", action, id, ans.Reason)
	}
	fmt.Fprintf(w, "%s upgrade %s: %s (phase %s); follow it with: cutover watch %s\n", action, id, ans.Reason, ans.Phase, id)
	return nil
}

// awaitAnswer waits for the planner's answer to request id.
func awaitAnswer(ctx context.Context, cons jetstream.Consumer, id string, timeout time.Duration) (events.UpgradeControlAnswered, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	it, err := cons.Messages()
	if err != nil {
		return events.UpgradeControlAnswered{}, err
	}
	go func() { <-ctx.Done(); it.Stop() }()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
				return events.UpgradeControlAnswered{}, fmt.Errorf("no answer from the planner within %v; is a planner running on this NATS? (cutover watch shows its events)", timeout)
			}
			return events.UpgradeControlAnswered{}, err
		}
		e, err := events.Decode(msg.Headers(), msg.Data())
		if err != nil || e.Type() != events.TypeUpgradeControlAnswered || events.CausationID(e) != id {
			continue
		}
		return events.DataAs[events.UpgradeControlAnswered](e)
	}
}

// controlEvent builds the event an operator's control publishes.
func controlEvent(id, action, reason, by string) (events.Event, error) {
	var d events.Data
	switch action {
	case events.ControlPause, events.ControlResume, events.ControlAbort, events.ControlRetry, events.ControlPromote:
		d = events.UpgradeControlRequested{Action: action, Reason: reason, RequestedBy: by}
	case "rollback":
		d = events.RollbackRequested{Reason: reason, RequestedBy: by}
	default:
		return events.Event{}, errors.New("control action " + action + " is unknown; use pause, resume, abort, rollback, retry or promote")
	}
	return events.New(events.Source("cli", ""), d, events.WithUpgrade(id))
}
