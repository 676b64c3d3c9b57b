package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/node-updater/testkit"
)

// TestReleaseLatestAndPinWithARegistry pushes tagged images to testkit's
// in-process registry and checks what `cutover release latest` and
// `cutover release pin` print.
func TestReleaseLatestAndPinWithARegistry(t *testing.T) {
	reg, err := testkit.StartRegistry(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Close(context.Background()) })
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
			var out strings.Builder
			if err := runReleaseLatest(t.Context(), tc.args, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("output %q, want %q", out.String(), tc.want)
			}
		})
	}
	if err := runReleaseLatest(t.Context(), []string{"--registry", reg.Addr(), "--repo", "kolla/nova-api", "--patch-only"}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "--current") {
		t.Errorf("--patch-only without --current = %v", err)
	}

	file := filepath.Join(t.TempDir(), "release.yaml")
	if err := os.WriteFile(file, []byte("release: r2\nservices:\n  nova-api:\n    image: "+reg.Addr()+"/kolla/nova-api:2.4.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runReleasePin(t.Context(), []string{"-f", file}, &out); err != nil {
		t.Fatal(err)
	}
	if want := "image: " + reg.Addr() + "/kolla/nova-api@" + digest["2.4.9"]; !strings.Contains(out.String(), want) {
		t.Errorf("pinned manifest:\n%s\nwant %q", out.String(), want)
	}
	rel, err := loadRelease(t.Context(), file, true, false)
	if err != nil || rel.Request.Release.Services["nova-api"].Image != reg.Addr()+"/kolla/nova-api@"+digest["2.4.9"] {
		t.Errorf("loadRelease --pin = %+v, %v", rel.Request.Release.Services, err)
	}
}
