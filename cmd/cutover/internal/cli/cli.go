// Package cli holds the pieces every cutover command is built from, so
// that help, arguments, flags and exit codes stay the same everywhere (see
// the package comment of cmd/cutover).
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
)

// GroupCmd makes a command that only holds subcommands (cutover
// inventory, cutover release): alone it prints its help; an unknown
// subcommand is a usage error, not help.
func GroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return exit.Usagef("unknown subcommand %q; use one of: %s", args[0], strings.Join(subNames(c), ", "))
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

// RunCmd makes a command of no arguments that runs run with the command's
// context and output (cutover demo, dev, rehearse): the caller adds its
// flags, which run reads when it is called.
func RunCmd(use, short, example string, run func(ctx context.Context, w io.Writer) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Example: example, Args: NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cmd.OutOrStdout()) },
	}
}

// NoArgs refuses positional arguments with a usage error.
func NoArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return exit.Usagef("unexpected argument %q (flags start with -)", args[0])
	}
	return nil
}

// ExactArgs wants exactly n positional arguments, described by what.
func ExactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return exit.Usagef("give %s (got %d arguments)", what, len(args))
		}
		return nil
	}
}

// MaxArgs wants at most n positional arguments, described by what.
func MaxArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > n {
			return exit.Usagef("give at most %s (got %d arguments)", what, len(args))
		}
		return nil
	}
}

// FormatValue is the -o/--output flag: one of a fixed set of formats,
// checked when the flag is parsed.
type FormatValue struct {
	Value   string
	allowed []string
}

func (f *FormatValue) String() string { return f.Value }
func (f *FormatValue) Type() string   { return "format" }
func (f *FormatValue) Set(s string) error {
	for _, a := range f.allowed {
		if s == a {
			f.Value = s
			return nil
		}
	}
	return fmt.Errorf("%q is not an output format here; use %s", s, strings.Join(f.allowed, " or "))
}

// OutputFlag adds -o/--output, the output format, to cmd; the first format
// is the default.
func OutputFlag(cmd *cobra.Command, formats ...string) *FormatValue {
	f := &FormatValue{Value: formats[0], allowed: formats}
	cmd.Flags().VarP(f, "output", "o", "output format: "+strings.Join(formats, " or "))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	return f
}

// FileFlag adds -f/--file, a file the command reads.
func FileFlag(cmd *cobra.Command, usage string) *string {
	p := cmd.Flags().StringP("file", "f", "", usage)
	_ = cmd.MarkFlagFilename("file", "yaml", "yml")
	return p
}

// EnvOr is the environment variable name, or def when it is unset or empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Version is the build's version v, with the VCS revision Go recorded when
// there is one, the Go version and the platform.
func Version(v string) string {
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

var _ pflag.Value = (*FormatValue)(nil)
