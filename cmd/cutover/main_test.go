package main

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/scenario"
)

func TestDemoWithoutDockerFallsBackToSim(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	r := runCLI(t.Context(), "demo")
	out := r.stdout
	if r.code != 0 {
		t.Fatalf("cutover demo without an engine: exit %d, want success on the simulated runtime; output:\n%s\n%s", r.code, out, r.stderr)
	}
	for _, want := range []string{
		"NOTICE: no Docker engine reachable",
		"running the demo on the SIMULATED runtime; start Docker to upgrade real containers",
		"upgrade.completed",
		"demo passed on the SIMULATED runtime",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "cutover-demo/web:v2  yes"); n != scenario.DemoNodes {
		t.Errorf("%d containers run v2 and serve in the summary, want %d:\n%s", n, scenario.DemoNodes, out)
	}
}
