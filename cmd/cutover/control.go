package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
)

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
		Short: upgrades.ControlUsage[action],
		Long: upgrades.ControlUsage[action] + `.

The planner answers: accepted (exit 0), or refused with the reason (exit 1).
No answer within --timeout exits 1: check that a planner runs (cutover
watch shows its events). The upgrade is named by its id, a unique prefix of
it, or its release name when one upgrade has it.`,
		Example: fmt.Sprintf("  cutover %s 019a7c3e --reason \"INC-123\"", action),
		Args:    cli.ExactArgs(1, "one upgrade: its id, a unique prefix of it, or its release name"),
	}
	nopts := cli.NATSFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	reason := cmd.Flags().String("reason", "", "why, for the history (default: \"<action> by <user>\")")
	timeout := cmd.Flags().Duration("timeout", 30*time.Second, "how long to wait for the planner's answer")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return nopts.With(cmd.Context(), func(ctx context.Context, js jetstream.JetStream) error {
			return upgrades.Control(ctx, js, cmd.OutOrStdout(), action, args[0], *reason, cli.EnvOr("USER", "operator"), *timeout)
		})
	}
	return cmd
}
