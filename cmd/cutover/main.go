// Command cutover is the operator's CLI: it runs the all-in-one dev stack,
// publishes upgrade requests, and shows their progress.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `cutover upgrades fleets of container hosts with zero downtime.

Usage:
  cutover dev      [--data DIR] [--nats-listen ADDR] [--nodes a,b|auto] [--http ADDR]
                   run NATS, planner, migrator, auditor and node-updaters in one process
  cutover apply    -f release.yaml [--nats URL] [--watch]
                   request an upgrade; prints the upgrade id
  cutover status   ID [-o text|json] [--nats URL]
                   show an upgrade's state
  cutover watch    [ID] [--nats URL]
                   follow events live (one upgrade until it ends, or everything)
  cutover pause|resume|abort|rollback ID [--reason TEXT] [--nats URL]
                   pause after the wave in flight, resume, stop for good (nothing
                   rolled back), or roll back the nodes updated so far
  cutover snapshots list|prune --driver sqlite|postgres --database LOCATION [--keep N]
                   the migrator's pre-migration snapshots of a database
  cutover demo     [--keep]
                   upgrade three real containers from v1 to v2 on the local Docker engine
  cutover demo-expand-contract [--rate N] [--duration D]
                   v1 and v2 share one SQLite database through expand -> roll -> contract under load
  cutover demo-zero-downtime [--rate N] [--duration D] [--baseline=false] [--haproxy-retries]
                   roll 3 replicas behind a real HAProxy under load, with drain and without
  cutover release latest --registry R --repo X [--patch-only --current TAG] [-o text|json]
                   the newest semver tag (or newest patch of TAG's major.minor) and its digest
  cutover release pin -f release.yaml [-o pinned.yaml]
                   pin every image of a manifest to the digest its tag has now
  cutover plan     -f release.yaml --inventory inventory.yaml [-o text|json]
                   dry run: every container's change and reason, phases and waves
  cutover inventory import --kolla FILE [-o out.yaml] [--registry R] [--tag T]
                   convert a kolla-ansible INI inventory into a cutover inventory
  cutover inventory check FILE
                   validate an inventory (file, line and field of every problem)
  cutover rehearse -f release.yaml --inventory inventory.yaml | --nodes N [--services M]
                   [--failure-rate P] [--seed S] [--latency pull=2s-10s,health=1s]
                   run the upgrade on a SIMULATED fleet (real planner and node-updaters,
                   in memory containers): duration, events/s, most instances down at once

Run 'cutover COMMAND -h' for a command's flags.
`

// exitError carries a process exit code through run.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{
		"dev": runDev, "apply": runApply, "status": runStatus, "watch": runWatch, "demo": runDemo,
		"snapshots": runSnapshots,
		"plan":      runPlan, "inventory": runInventory,
		"rehearse":             runRehearse,
		"demo-zero-downtime":   runDemoZeroDowntime,
		"demo-expand-contract": runDemoExpandContract,
		"pause":                runPause, "resume": runResume, "abort": runAbort, "rollback": runRollback,
		"release": runRelease,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "cutover: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	err := cmd(ctx, os.Args[2:])
	var ee exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintf(os.Stderr, "cutover %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// parseArgs parses flags that may come before or after positional arguments
// (cutover status ID -o json), which the flag package alone stops at.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, exitError{2}
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
