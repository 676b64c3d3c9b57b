package rehearsal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// The fleet benchmark runs the planner in a process of its own, this test
// binary started again with these variables, so its memory is measured
// apart from the simulated fleet's and the NATS server's.
const (
	plannerProcNATS  = "CUTOVER_BENCH_PLANNER_NATS"
	plannerProcNodes = "CUTOVER_BENCH_PLANNER_NODES"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(plannerProcNATS); url != "" {
		if err := runPlannerProcess(url, os.Getenv(plannerProcNodes)); err != nil {
			fmt.Fprintln(os.Stderr, "planner process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runPlannerProcess runs a planner with the generated fleet's inventory
// until SIGTERM.
func runPlannerProcess(url, nodes string) error {
	n, err := strconv.Atoi(nodes)
	if err != nil {
		return fmt.Errorf("%s=%q: want a node count", plannerProcNodes, nodes)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	inv, _ := GeneratedFleet(n, 20, "10%")
	nc, js, err := events.Connect(ctx, events.ClientConfig{URL: url}, "cutover-bench-planner")
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := planner.New(ctx, planner.Config{Inventory: inv, Logger: slog.New(slog.DiscardHandler)}, js)
	if err != nil {
		return err
	}
	if err := p.Start(ctx); err != nil {
		return err
	}
	fmt.Println("planner started")
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Close(cctx)
}

// plannerProcess starts the planner process for a fleet of n nodes and
// returns the function that stops it, which records its peak RSS in *peak.
func plannerProcess(tb testing.TB, n int, peak *int64) func(context.Context, string) (func(context.Context) error, error) {
	return func(ctx context.Context, url string) (func(context.Context) error, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), plannerProcNATS+"="+url, plannerProcNodes+"="+strconv.Itoa(n))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start planner process: %w", err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.Contains(line, "planner started") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("planner process did not start (%q, %v)", line, err)
		}
		return func(context.Context) error {
			rss, rerr := peakRSS(cmd.Process.Pid)
			*peak = rss
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return errors.Join(rerr, cmd.Wait())
		}, nil
	}
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}
