// Command cutover is the operator's CLI: it runs the all-in-one dev stack,
// publishes upgrade requests, and shows their progress.
//
// # Adding a command
//
// Commands are spf13/cobra commands; follow the existing ones so that help,
// exit codes and flags stay the same everywhere:
//
//   - Write newXCmd() *cobra.Command in its own file (x.go) and add it to
//     the right group in newRootCmd. Set Use ("x ID [flags]"), Short (one
//     line, lower case, no full stop), Example (real command lines), Args
//     (exactIDs, noArgs, ... from this file: they return usage errors)
//     and RunE. Put subcommands under a group command made by newGroupCmd.
//   - Declare flags on cmd.Flags() inside newXCmd, into local variables the
//     RunE closure reads. -o/--output is ALWAYS the output format (add it
//     with outputFlag); a file to write is --out, a file to read is
//     -f/--file. Commands that talk to NATS call natsFlags(cmd) and
//     connect through it, so connection and auth flags stay in one place.
//   - Write to cmd.OutOrStdout() / cmd.ErrOrStderr(), never os.Stdout, so
//     the in-process tests see the output. Use cmd.Context(): it ends on
//     Ctrl-C or SIGTERM.
//   - Return errors; execute prints "cutover x: <error>" once and exits 1.
//     A usage mistake returns usageErrorf (exit 2, with a pointer to -h);
//     exit.Error{Code: code} exits with that code and prints nothing more.
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
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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
		Version:           versionString(),
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
	add("run", newDevCmd(), newDemoCmd(), newDemoZeroDowntimeCmd(), newDemoExpandContractCmd(), newDemoOpenStackCmd(), newRehearseCmd())
	root.AddCommand(newVersionCmd())
	return root
}

// newGroupCmd makes a command that only holds subcommands (cutover
// inventory, cutover release): alone it prints its help; an unknown
// subcommand is a usage error, not help.
func newGroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown subcommand %q; use one of: %s", args[0], strings.Join(subNames(c), ", "))
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(subs...)
	return c
}

func subNames(c *cobra.Command) []string {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	return names
}

// noArgs refuses positional arguments with a usage error.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q (flags start with -)", args[0])
	}
	return nil
}

// exactArgs wants exactly n positional arguments, described by what.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("give %s (got %d arguments)", what, len(args))
		}
		return nil
	}
}

// maxArgs wants at most n positional arguments, described by what.
func maxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return usageErrorf("give at most %s (got %d arguments)", what, len(args))
		}
		return nil
	}
}

// formatValue is the -o/--output flag: one of a fixed set of formats,
// checked when the flag is parsed.
type formatValue struct {
	value   string
	allowed []string
}

func (f *formatValue) String() string { return f.value }
func (f *formatValue) Type() string   { return "format" }
func (f *formatValue) Set(s string) error {
	for _, a := range f.allowed {
		if s == a {
			f.value = s
			return nil
		}
	}
	return fmt.Errorf("%q is not an output format here; use %s", s, strings.Join(f.allowed, " or "))
}

// outputFlag adds -o/--output, the output format, to cmd; the first format
// is the default.
func outputFlag(cmd *cobra.Command, formats ...string) *formatValue {
	f := &formatValue{value: formats[0], allowed: formats}
	cmd.Flags().VarP(f, "output", "o", "output format: "+strings.Join(formats, " or "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	return f
}

// fileFlag adds -f/--file, a file the command reads.
func fileFlag(cmd *cobra.Command, usage string) *string {
	p := cmd.Flags().StringP("file", "f", "", usage)
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return p
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// versionString is the build's version, with the VCS revision Go recorded
// when there is one.
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " (" + rev + dirty + ")"
		}
	}
	return v + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version of this binary",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "cutover %s\n", versionString())
			return err
		},
	}
}

var _ pflag.Value = (*formatValue)(nil)
