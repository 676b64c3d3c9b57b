package main

import (
	"errors"
	"flag"
	"slices"
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

func TestDemoWithoutDockerExitsWithItsOwnCode(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	err := runDemo(t.Context(), nil)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("runDemo without an engine = %v, want exit code 3", err)
	}
}
