package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/release"
	"github.com/cutover-dev/cutover/harness/testkit"
)

// TestReleaseLatestAndPinWithARegistry pushes tagged images to testkit's
// in-process registry and checks what `cutover release latest` and
// `cutover release pin` print.
func TestReleaseLatestAndPinWithARegistry(t *testing.T) {
	reg := testkit.StartTestRegistry(t)
	bin := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	digest := map[string]string{}
	for _, tag := range []string{"2.4.1", "2.4.9", "2.5.0", "2.10.0", "3.0.0-rc1", "latest"} {
		img, err := reg.Push(t.Context(), bin, testkit.ImageSpec{Repo: "kolla/nova-api", Tag: tag, Version: tag})
		if err != nil {
			t.Fatal(err)
		}
		digest[tag] = img.Digest
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "newest semver", args: []string{"--registry", reg.Addr(), "--repo", "kolla/nova-api"}, want: "2.10.0 " + digest["2.10.0"] + "\n"},
		{name: "newest patch", args: []string{"--registry", reg.Addr(), "--repo", "kolla/nova-api", "--patch-only", "--current", "2.4.1"}, want: "2.4.9 " + digest["2.4.9"] + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t.Context(), append([]string{"release", "latest"}, tc.args...)...)
			if r.code != 0 {
				t.Fatalf("release latest: %+v", r)
			}
			if r.stdout != tc.want {
				t.Errorf("output %q, want %q", r.stdout, tc.want)
			}
		})
	}
	if r := runCLI(t.Context(), "release", "latest", "--registry", reg.Addr(), "--repo", "kolla/nova-api", "--patch-only"); r.code != 2 || !strings.Contains(r.stderr, "--current") {
		t.Errorf("--patch-only without --current = %+v, want exit 2 naming --current", r)
	}

	file := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(file, []byte("release: r2\nservices:\n  nova-api:\n    image: "+reg.Addr()+"/kolla/nova-api:2.4.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t.Context(), "release", "pin", "-f", file)
	if r.code != 0 {
		t.Fatalf("release pin: %+v", r)
	}
	if want := "image: " + reg.Addr() + "/kolla/nova-api@" + digest["2.4.9"]; !strings.Contains(r.stdout, want) {
		t.Errorf("pinned manifest:\n%s\nwant %q", r.stdout, want)
	}
	pinnedFile := filepath.Join(t.TempDir(), "pinned.yaml")
	if r := runCLI(t.Context(), "release", "pin", "-f", file, "--out", pinnedFile); r.code != 0 || r.stdout != "" {
		t.Fatalf("release pin --out: %+v", r)
	}
	if raw, err := os.ReadFile(pinnedFile); err != nil || string(raw) != r.stdout {
		t.Errorf("--out wrote %q (%v), want what standard output showed", raw, err)
	}
	rel, err := release.Load(t.Context(), file, true, false)
	if err != nil || rel.Request.Release.Services["nova-api"].Image != reg.Addr()+"/kolla/nova-api@"+digest["2.4.9"] {
		t.Errorf("release.Load --pin = %+v, %v", rel.Request.Release.Services, err)
	}
}
