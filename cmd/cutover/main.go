// Command cutover is the operator's CLI: it runs the all-in-one dev stack,
// publishes upgrade requests, and shows their progress.
//
// # Adding a command
//
// Commands are spf13/cobra commands; follow the existing ones so that help,
// exit codes and flags stay the same everywhere. Package main holds only the
// commands: one thin file per command (x.go) that declares its flags and
// calls into an internal package doing the work (internal/upgrades,
// internal/fleetinfo, internal/migration, internal/planning,
// internal/release, internal/stack, internal/scenario, internal/rehearsal).
//
//   - Write newXCmd() *cobra.Command in its own file (x.go) and add it to
//     the right group in newRootCmd. Set Use ("x ID [flags]"), Short (one
//     line, lower case, no full stop), Example (real command lines), Args
//     (cli.NoArgs, cli.ExactArgs, cli.MaxArgs: they return usage errors)
//     and RunE. Put subcommands under a group command made by cli.GroupCmd.
//   - Declare flags on cmd.Flags() inside newXCmd, into local variables the
//     RunE closure reads. -o/--output is ALWAYS the output format (add it
//     with cli.OutputFlag); a file to write is --out, a file to read is
//     -f/--file (cli.FileFlag). Commands that talk to NATS call
//     cli.NATSFlags(cmd) and connect through it, so connection and auth flags
//     stay in one place; RunE connects and hands the JetStream on.
//   - Write to cmd.OutOrStdout() / cmd.ErrOrStderr(), never os.Stdout, so
//     the in-process tests see the output (internal packages take the
//     io.Writer). Use cmd.Context(): it ends on Ctrl-C or SIGTERM.
//   - Return errors; execute prints "cutover x: <error>" once and exits 1.
//     A usage mistake returns usageErrorf or exit.Usagef (exit 2, with a
//     pointer to -h); exit.Error{Code: code} exits with that code and
//     prints nothing more.
//   - TestHelpOnEveryCommand runs -h on every command, so a new command
//     needs no test for its help, but every other behaviour does.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func usageErrorf(format string, a ...any) error { return exit.Usagef(format, a...) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs one command line and returns the process exit code: 0 on
// success (and for -h, --help, help), 1 when the command failed, 2 for a
// usage mistake, 130 when ctx ended (Ctrl-C) before the command finished,
// or the code of an exit.Error.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee exit.Error
	var ue exit.UsageError
	switch {
	case ctx.Err() != nil:
		// Interrupted: the operator knows; no "context canceled" noise.
		return 130
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command "):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		if slices.Contains(args, "--detailed-exitcode") {
			return 1 // 2 means "changes" there
		}
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
		return 1
	}
}

// newRootCmd builds the whole command tree; each call makes a fresh one,
// so tests can run many command lines in one process.
func newRootCmd() *cobra.Command {
	// List commands in the order they are added (the order an operator
	// meets them), not alphabetically.
	cobra.EnableCommandSorting = false
	root := &cobra.Command{
		Use:   "cutover",
		Short: "upgrade fleets of container hosts with zero downtime",
		Long: `cutover upgrades fleets of container hosts with zero downtime: a planner,
a migrator, one node-updater per host and an auditor talk through CloudEvents
on NATS JetStream. This CLI requests upgrades, follows and steers them, plans
and rehearses them, and runs the whole stack on one machine (cutover dev).`,
		Version:           cli.Version(version),
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetVersionTemplate("cutover {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if strings.Contains(err.Error(), "shorthand flag: 'o'") && c.Flags().Lookup("out") != nil {
			// -o wrote a file here once; say where that went.
			return usageErrorf("%v: -o is the output format in every command; write to a file with --out FILE", err)
		}
		return exit.UsageError{Err: err}
	})
	root.AddGroup(
		&cobra.Group{ID: "upgrades", Title: "Upgrades:"},
		&cobra.Group{ID: "plan", Title: "Plans, releases and inventories:"},
		&cobra.Group{ID: "fleet", Title: "Fleet and databases:"},
		&cobra.Group{ID: "run", Title: "Run and try:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("upgrades", newApplyCmd(), newListCmd(), newStatusCmd(), newWatchCmd(), newHistoryCmd())
	add("upgrades", newControlCmds()...)
	add("plan", newPlanCmd(), newReleaseCmd(), newInventoryCmd())
	add("fleet", newAdoptCmd(), newNodesCmd(), newLocksCmd(), newDbCmd(), newSnapshotsCmd(), newNATSConfigCmd(), newRejectedCmd())
	add("run", newDevCmd(), newDemoCmd(), newDemoZeroDowntimeCmd(), newDemoExpandContractCmd(), newDemoOpenStackCmd(), newDemoClusterCmd(), newRehearseCmd())
	root.AddCommand(newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of this binary",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "cutover %s\n", cli.Version(version))
			return err
		},
	}
}
