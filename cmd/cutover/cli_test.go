package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// cliResult is what one in-process command line printed and returned.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs one command line in this process, as main does.
func runCLI(ctx context.Context, args ...string) cliResult {
	var out, errb bytes.Buffer
	code := execute(ctx, args, &out, &errb)
	return cliResult{out.String(), errb.String(), code}
}

// allCommands walks the command tree, the help and completion commands
// cobra adds included.
func allCommands() [][]string {
	root := newRootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, s := range c.Commands() {
			walk(s, append(append([]string{}, path...), s.Name()))
		}
	}
	walk(root, nil)
	return paths
}

// TestHelpOnEveryCommand asks every command and subcommand for help the
// three ways an operator does: -h, --help and cutover help CMD. Each prints
// the usage with every flag on stdout and exits 0, and nothing runs.
func TestHelpOnEveryCommand(t *testing.T) {
	paths := allCommands()
	if len(paths) < 25 {
		t.Fatalf("walked %d commands, want every command of the CLI", len(paths))
	}
	for _, path := range paths {
		name := "cutover " + strings.Join(path, " ")
		for _, form := range [][]string{
			append(append([]string{}, path...), "-h"),
			append(append([]string{}, path...), "--help"),
			append([]string{"help"}, path...),
		} {
			t.Run(strings.Join(form, "_"), func(t *testing.T) {
				r := runCLI(t.Context(), form...)
				if r.code != 0 || r.stderr != "" {
					t.Fatalf("cutover %s: exit %d, stderr %q; want exit 0 and nothing on stderr", strings.Join(form, " "), r.code, r.stderr)
				}
				for _, want := range []string{"Usage:", strings.TrimSpace(name), "-h, --help"} {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("cutover %s: stdout lacks %q:\n%s", strings.Join(form, " "), want, r.stdout)
					}
				}
			})
		}
	}
}

// TestHelpListsEveryFlag checks that the help shows the flags a command
// has, so an operator needs no other page.
func TestHelpListsEveryFlag(t *testing.T) {
	tests := map[string][]string{
		"dev":              {"--inventory", "--debug", "--nodes", "--http", "--data"},
		"plan":             {"-f, --file", "--inventory", "--pin", "-o, --output"},
		"inventory import": {"--kolla", "--out", "--globals", "--registry", "--tag"},
		"adopt":            {"--inventory", "--node", "-o, --output"},
		"release pin":      {"-f, --file", "--out"},
		"snapshots prune":  {"--keep", "--driver", "--database"},
		"status":           {"-o, --output", "--nats"},
	}
	for cmd, flags := range tests {
		r := runCLI(t.Context(), append(strings.Fields(cmd), "-h")...)
		for _, f := range flags {
			if !strings.Contains(r.stdout, f) {
				t.Errorf("cutover %s -h lacks %s:\n%s", cmd, f, r.stdout)
			}
		}
	}
	top := runCLI(t.Context(), "--help").stdout
	for _, c := range []string{"apply", "status", "watch", "pause", "plan", "inventory", "adopt", "snapshots", "dev", "rehearse", "version", "completion"} {
		if !strings.Contains(top, "\n  "+c+" ") {
			t.Errorf("cutover --help does not list %s:\n%s", c, top)
		}
	}
}

// TestExitCodes pins the CLI's exit codes: 0 for help and version, 2 for
// a usage mistake (with a pointer to the help on stderr, nothing on
// stdout), 1 for a failure.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		noStdout   bool
		emptyStder bool
	}{
		{name: "no command prints help", args: nil, code: 0, stdout: "Usage:"},
		{name: "version", args: []string{"version"}, code: 0, stdout: "cutover dev"},
		{name: "--version", args: []string{"--version"}, code: 0, stdout: "cutover dev"},
		{name: "unknown command", args: []string{"no-such"}, code: 2, stderr: "unknown command \"no-such\"", noStdout: true},
		{name: "unknown flag", args: []string{"plan", "--no-such"}, code: 2, stderr: "Run 'cutover plan --help' for usage.", noStdout: true},
		{name: "unknown subcommand", args: []string{"inventory", "bogus"}, code: 2, stderr: "unknown subcommand \"bogus\"; use one of: import, check", noStdout: true},
		{name: "group alone prints help", args: []string{"inventory"}, code: 0, stdout: "Available Commands:"},
		{name: "bad output format", args: []string{"status", "ID", "-o", "yaml"}, code: 2, stderr: "\"yaml\" is not an output format here; use text or json", noStdout: true},
		{name: "flags before positionals", args: []string{"status", "-o", "yaml", "ID"}, code: 2, stderr: "use text or json"},
		{name: "missing id", args: []string{"status"}, code: 2, stderr: "give one upgrade: its id, a unique prefix"},
		{name: "-o is no output file", args: []string{"release", "pin", "-f", "r.yaml", "-o", "pinned.yaml"}, code: 2, stderr: "output format"},
		{name: "missing file", args: []string{"inventory", "check", "/nonexistent/inv.yaml"}, code: 1, stderr: "/nonexistent/inv.yaml"},
		{name: "completion bash", args: []string{"completion", "bash"}, code: 0, stdout: "__start_cutover"},
		{name: "completion zsh", args: []string{"completion", "zsh"}, code: 0, stdout: "#compdef cutover"},
		{name: "completion fish", args: []string{"completion", "fish"}, code: 0, stdout: "complete -c cutover"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t.Context(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) || tc.noStdout && r.stdout != "" {
				t.Errorf("cutover %s: exit %d\nstdout: %s\nstderr: %s\nwant exit %d, stdout with %q, stderr with %q", strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestHelpThroughTheBinary runs the built binary's -h on every command and
// subcommand: exit 0, the usage on stdout, nothing on stderr.
func TestHelpThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildCutover(t)
	for _, path := range allCommands() {
		r := runBin(t, bin, append(path, "-h")...)
		name := strings.TrimSpace("cutover " + strings.Join(path, " "))
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, name) {
			t.Errorf("%s -h: exit %d, stderr %q, stdout:\n%s", name, r.code, r.stderr, r.stdout)
		}
	}
	if r := runBin(t, bin, "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "cutover ") {
		t.Errorf("cutover --version: %+v", r)
	}
}
