package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// readmeCommands returns every cutover command line in the README's code
// blocks (fenced or indented), with its line number.
func readmeCommands(t *testing.T) map[int]string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	fenced := false
	for i, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		indented := strings.HasPrefix(l, "    ")
		if !fenced && !indented {
			continue
		}
		s := strings.TrimSpace(l)
		s = strings.TrimPrefix(s, "$ ")
		s = strings.TrimPrefix(s, "./bin/")
		if f := strings.Fields(s); len(f) > 1 && f[0] == "cutover" && !strings.HasSuffix(f[1], ":") { // not output ("cutover demo: ...")
			out[i+1] = s
		}
	}
	return out
}

// TestREADMECommandsExist checks every cutover command line of the README
// against the program: the command exists, and each flag it uses is one
// of that command's flags, so the README cannot drift from the CLI.
func TestREADMECommandsExist(t *testing.T) {
	cmds := readmeCommands(t)
	if len(cmds) < 30 {
		t.Fatalf("found %d cutover command lines in the README, want the documented ones", len(cmds))
	}
	for line, c := range cmds {
		if i := strings.Index(c, " #"); i >= 0 {
			c = c[:i] // a comment
		}
		for _, cut := range []string{" |", " >", " &&", " ||", ";"} {
			if i := strings.Index(c, cut); i >= 0 {
				c = c[:i]
			}
		}
		args := strings.Fields(c)[1:]
		root := newRootCmd()
		root.InitDefaultCompletionCmd()
		cmd, rest, err := root.Find(args)
		if err != nil || cmd == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			t.Errorf("README.md:%d: %q: no such command (%v)", line, c, err)
			continue
		}
		for _, a := range rest {
			a = strings.Trim(a, "[]")
			if !strings.HasPrefix(a, "-") || a == "-" {
				continue
			}
			name, _, _ := strings.Cut(a, "=")
			var ok bool
			if strings.HasPrefix(name, "--") {
				ok = cmd.Flags().Lookup(name[2:]) != nil || cmd.InheritedFlags().Lookup(name[2:]) != nil || name == "--help"
			} else {
				ok = len(name) == 2 && (cmd.Flags().ShorthandLookup(name[1:]) != nil || name == "-h")
			}
			if !ok {
				t.Errorf("README.md:%d: %q: %s has no flag %s (its flags: %s)", line, c, cmd.CommandPath(), name, flagNames(cmd))
			}
		}
	}
}

func flagNames(c *cobra.Command) string {
	var names []string
	c.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, "--"+f.Name) })
	return strings.Join(names, " ")
}

// sessionStep is one "$ cutover ..." line of the README's session and the
// exit code the README says it has ("# exit N"; 0 when it says none).
type sessionStep struct {
	line int
	args []string
	exit int
}

var exitNote = regexp.MustCompile(`#\s*exit (\d+)`)

// readmeSession returns the commands of the README's recorded session: the
// console block after the line "<!-- session: TestREADMESession -->".
func readmeSession(t *testing.T) []sessionStep {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []sessionStep
	sc := bufio.NewScanner(f)
	in, fence, n := false, 0, 0
	for sc.Scan() {
		n++
		l := sc.Text()
		if strings.Contains(l, "<!-- session: TestREADMESession -->") {
			in = true
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(l, "```") {
			if fence++; fence == 2 {
				break
			}
			continue
		}
		if !strings.HasPrefix(l, "$ cutover ") {
			continue
		}
		cmdline := strings.TrimPrefix(l, "$ ")
		st := sessionStep{line: n}
		if m := exitNote.FindStringSubmatch(cmdline); m != nil {
			st.exit, _ = strconv.Atoi(m[1])
		}
		if i := strings.Index(cmdline, "#"); i >= 0 {
			cmdline = cmdline[:i]
		}
		st.args = strings.Fields(cmdline)[1:]
		steps = append(steps, st)
	}
	return steps
}

// TestREADMESession runs the README's recorded session against `cutover
// dev` with three simulated nodes, each command through the built binary,
// and checks every exit code the README shows. node1's registry refuses
// its first 5 pulls (the canary fails once, retry succeeds). With
// CUTOVER_README_TRANSCRIPT=1 it prints the session as the README shows
// it: that is where the README's output comes from.
func TestREADMESession(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs the dev stack")
	}
	steps := readmeSession(t)
	if len(steps) < 8 {
		t.Fatalf("README session has %d commands; want the documented session", len(steps))
	}
	bin := buildCutover(t)
	addr, data, work := freeAddr(t), t.TempDir(), t.TempDir()
	url := "nats://" + addr
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("CUTOVER_DATA", data)
	t.Setenv("CUTOVER_NATS", url)
	dev := startDev(t, bin, "--nodes", "node1,node2,node3", "--nats-listen", addr, "--data", data)
	startSimNodes(t, url, data, []string{"node1"}, 5)
	startSimNodes(t, url, data, []string{"node2", "node3"}, 0)
	waitInventories(t, connectAs(t, url, data, cli.Identity), []string{"node1", "node2", "node3"})
	if err := os.WriteFile(filepath.Join(work, "release.yaml"), []byte(readmeRelease), 0o644); err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	for _, st := range steps {
		r := runBinIn(t, work, bin, st.args...)
		fmt.Fprintf(&transcript, "$ cutover %s\n%s%s", strings.Join(st.args, " "), r.stdout, r.stderr)
		if r.code != st.exit {
			t.Errorf("README.md:%d: cutover %s: exit %d, README says %d\nstdout: %s\nstderr: %s", st.line, strings.Join(st.args, " "), r.code, st.exit, r.stdout, r.stderr)
		}
	}
	if os.Getenv("CUTOVER_README_TRANSCRIPT") != "" {
		t.Logf("transcript:\n%s", transcript.String())
	}
	dev.stop(t)
}

// readmeRelease is the release.yaml of the README's session.
const readmeRelease = `release: web-2.0.1
failure_action: rollback
pause_after_canary: true
services:
  web:
    image: registry.example/web:2.0.1
    min_healthy: 2s
`

// startSimNodes runs simulated node-updaters for nodes, each running
// web-<node> at registry.example/web:2.0.0; each node's registry refuses
// its first failFirstPulls pulls.
func startSimNodes(t *testing.T, url, data string, nodes []string, failFirstPulls int) {
	t.Helper()
	var specs []sim.NodeSpec
	var jss = make([]jetstream.JetStream, 0, len(nodes))
	for _, n := range nodes {
		specs = append(specs, sim.NodeSpec{Name: n, Containers: []sim.ContainerSpec{{Name: "web-" + n, Service: "web", Image: "registry.example/web:2.0.0"}}})
		jss = append(jss, connectAs(t, url, data, "node-updater-"+n))
	}
	f, err := sim.StartFleet(t.Context(), jss, sim.FleetConfig{Nodes: specs, Seed: 1, AgentVersion: "2.0.0-sim", FailFirstPulls: failFirstPulls, PullBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
}
