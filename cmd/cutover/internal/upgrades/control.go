package upgrades

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// ControlUsage says what each operator control does, for -h.
var ControlUsage = map[string]string{
	events.ControlPause:   "finish the wave in flight, then start nothing more until resume (keeps the scope lock)",
	events.ControlResume:  "continue a paused upgrade, retrying what failed in the current step",
	events.ControlAbort:   "stop for good: nothing more is sent, nothing is rolled back, the scope lock is released",
	events.ControlRetry:   "start a paused or rolled-back upgrade again from the step that failed",
	events.ControlPromote: "let a pause_after_canary upgrade go on past its canary wave",
	"rollback":            "return the nodes updated so far to their previous images, latest first, then the database",
}

// Control sends operator by's control of the upgrade arg names (pause,
// resume, abort, rollback, retry, promote) to the planner and waits up to
// timeout for its answer: nil when accepted, the reason when refused.
func Control(ctx context.Context, js jetstream.JetStream, w io.Writer, action, arg, reason, by string, timeout time.Duration) error {
	if reason == "" {
		reason = action + " by " + by
	}
	id, err := Resolve(ctx, js, arg)
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
