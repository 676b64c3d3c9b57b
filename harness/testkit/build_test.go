package testkit

import (
	"os"
	"path/filepath"
	"testing"
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
