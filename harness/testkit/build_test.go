package testkit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildDemoAppCachesPerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demoapp binary")
	}
	first, err := BuildDemoApp(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	firstInfo, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	if firstInfo.Mode().Perm()&0o100 == 0 {
		t.Errorf("%s is not executable: %v", first, firstInfo.Mode())
	}

	dir := t.TempDir()
	second, err := BuildDemoApp(t.Context(), dir)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if second != filepath.Join(dir, "demoapp") {
		t.Errorf("second path %s, want it inside %s", second, dir)
	}
	secondInfo, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	if secondInfo.Size() != firstInfo.Size() {
		t.Errorf("copy is %d bytes, original %d", secondInfo.Size(), firstInfo.Size())
	}

	// The cached file vanishing (its temp dir cleaned up) forces a rebuild.
	if err := os.Remove(second); err != nil {
		t.Fatal(err)
	}
	third, err := BuildDemoApp(t.Context(), dir)
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if _, err := os.Stat(third); err != nil {
		t.Errorf("rebuilt binary: %v", err)
	}
}

// TestBuildThatRunsOutOfTimeSaysSo: a go tool killed at the deadline is
// reported as a build that did not finish, not as "signal: killed".
func TestBuildThatRunsOutOfTimeSaysSo(t *testing.T) {
	bin := t.TempDir()
	// A go tool that never finishes, first on PATH.
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	var b appBuild
	_, err := b.build(ctx, t.TempDir(), DemoAppPackage, "demoapp")
	if err == nil {
		t.Fatal("a build that never finishes succeeded")
	}
	for _, want := range []string{"build demoapp: go build " + DemoAppPackage + " did not finish", "context deadline exceeded", "run it again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
