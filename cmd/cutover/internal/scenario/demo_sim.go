package scenario

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/exit"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/services/node-updater/sim"
)

// demoSimLatency makes the simulated demo look like a small real one: the
// steps take about as long as they do on a local engine.
var demoSimLatency = sim.Latencies{
	Pull:   sim.Uniform(200*time.Millisecond, 500*time.Millisecond),
	Stop:   sim.Uniform(100*time.Millisecond, 300*time.Millisecond),
	Start:  sim.Fixed(100 * time.Millisecond),
	Health: sim.Uniform(300*time.Millisecond, 800*time.Millisecond),
}

// demoSim runs the demo's upgrade (3 nodes, one web container each, v1
// to v2) on the simulated runtime, for machines without a Docker engine:
// the same NATS, planner, migrator, auditor and node-updater code, with
// containers that exist only in memory. It says so before anything else.
func demoSim(ctx context.Context, out io.Writer, dockerErr error, o DemoOptions) error {
	fmt.Fprintf(out, "NOTICE: no Docker engine reachable (%v): running the demo on the SIMULATED runtime; start Docker to upgrade real containers\n\n", dockerErr)
	fmt.Fprintln(out, "cutover demo: upgrade 3 simulated containers of the 'web' service from v1 to v2")
	work, err := os.MkdirTemp("", "cutover-demo-sim-")
	if err != nil {
		return fmt.Errorf("create demo data dir: %w", err)
	}
	defer os.RemoveAll(work)

	const v1, v2 = "cutover-demo/web:v1", "cutover-demo/web:v2"
	var specs []sim.NodeSpec
	for i := 1; i <= DemoNodes; i++ {
		specs = append(specs, sim.NodeSpec{Name: fmt.Sprintf("demo-node%d", i), Containers: []sim.ContainerSpec{
			{Name: fmt.Sprintf("cutover-demo-web-%d", i), Service: "web", Image: v1},
		}})
	}
	cfg := stack.Config{
		DataDir: filepath.Join(work, "data"), NATSListen: o.Listen,
		AgentVersion: o.Version, Logger: Logger(o.Debug),
	}
	var jss []jetstream.JetStream
	for _, n := range specs {
		cfg.Nodes = append(cfg.Nodes, n.Name) // their identities; the sim runs them
	}
	s, err := startSecured(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close(context.WithoutCancel(ctx))
	for _, n := range specs {
		js, err := s.Connect(ctx, "node-updater-"+n.Name)
		if err != nil {
			return err
		}
		jss = append(jss, js)
	}
	fleet, err := sim.StartFleet(ctx, jss, sim.FleetConfig{
		Nodes: specs, Seed: time.Now().UnixNano(), Latency: demoSimLatency,
		Logger: Logger(o.Debug).With("service", "node-updater"), AgentVersion: o.Version,
	})
	if err != nil {
		return err
	}
	defer fleet.Close(context.WithoutCancel(ctx))
	for _, n := range specs {
		fmt.Fprintf(out, "  simulated %s on %s running v1 (%s)\n", n.Containers[0].Name, n.Name, v1)
	}
	fmt.Fprintf(out, "  cutover running in this process: NATS %s, planner, migrator, auditor, %d node-updaters on the sim runtime\n", s.ClientURL(), len(specs))

	// Without an engine nothing else bounds a stuck run.
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	id, interruption, followErr, err := demoUpgrade(fctx, s, out, v2)
	if err != nil {
		return err
	}

	var rows []summaryRow
	for _, n := range specs {
		rt := fleet.Runtime(n.Name)
		name := n.Containers[0].Name
		img, serves := rt.Images()[name], "no"
		if rt.Serving()[name] {
			serves = "yes"
		}
		rows = append(rows, summaryRow{fmt.Sprintf("  %s\t%s\t%s\t%s\t%dms", name, n.Name, img, serves, interruption[name]), img == v2 && serves == "yes"})
	}
	ok := summary(ctx, s, out, id, followErr, "read back from the simulated nodes", "  container\tnode\timage\tserves\tinterruption", rows)
	if !ok {
		fmt.Fprintln(out, "\ndemo FAILED on the simulated runtime: not every container runs v2 (see above)")
		return exit.Error{Code: 1}
	}
	fmt.Fprintln(out, "\ndemo passed on the SIMULATED runtime: every container runs v2; start Docker and run 'make demo' again to upgrade real containers")
	return nil
}
