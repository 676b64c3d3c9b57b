package main

import (
	"flag"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseArgsAcceptsFlagsAfterPositionals(t *testing.T) {
	tests := []struct {
		args       []string
		wantPos    []string
		wantOutput string
	}{
		{[]string{"ID", "-o", "json"}, []string{"ID"}, "json"},
		{[]string{"-o", "json", "ID"}, []string{"ID"}, "json"},
		{[]string{"ID"}, []string{"ID"}, "text"},
		{[]string{"A", "-o", "json", "B"}, []string{"A", "B"}, "json"},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("status", flag.ContinueOnError)
		out := fs.String("o", "text", "")
		pos, err := parseArgs(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.wantPos) || *out != tc.wantOutput {
			t.Errorf("parseArgs(%q) = %q, -o %q, %v; want %q, -o %q", tc.args, pos, *out, err, tc.wantPos, tc.wantOutput)
		}
	}
}

func TestDemoWithoutDockerFallsBackToSim(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	t.Cleanup(func() { os.Stdout = stdout })
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	runErr := runDemo(t.Context(), nil)
	w.Close()
	os.Stdout = stdout
	out := <-got
	if runErr != nil {
		t.Fatalf("runDemo without an engine = %v, want success on the simulated runtime; output:\n%s", runErr, out)
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
	if n := strings.Count(out, "cutover-demo/web:v2  yes"); n != demoNodes {
		t.Errorf("%d containers run v2 and serve in the summary, want %d:\n%s", n, demoNodes, out)
	}
}
