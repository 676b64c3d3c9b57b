package testkit

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPushImageShape pushes a fake binary and reads the image back from the
// registry, checking what Docker will see. It needs no Docker engine.
func TestPushImageShape(t *testing.T) {
	reg := StartTestRegistry(t)
	if !strings.HasPrefix(reg.Addr(), "127.0.0.1:") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:PORT", reg.Addr())
	}
	bin := filepath.Join(t.TempDir(), "demoapp")
	if err := os.WriteFile(bin, []byte("#!fake binary"), 0o755); err != nil {
		t.Fatal(err)
	}

	spec := ImageSpec{
		Repo:        "shop/web",
		Tag:         "v1",
		Version:     "1.0.0",
		Mode:        "slow-start",
		Env:         []string{"DEMO_SLOW=2s"},
		Labels:      map[string]string{"a": "b"},
		Healthcheck: true,
		Extra:       map[string]string{"/migrations/0001_init.up.sql": "SELECT 1;"},
	}
	img, err := reg.Push(t.Context(), bin, spec)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if want := reg.Addr() + "/shop/web:v1"; img.Ref != want {
		t.Errorf("Ref = %q, want %q", img.Ref, want)
	}
	if !strings.HasPrefix(img.Digest, "sha256:") || !strings.HasPrefix(img.ID, "sha256:") || img.Digest == img.ID {
		t.Errorf("Digest %q, ID %q", img.Digest, img.ID)
	}

	// Same spec, same digest: images are reproducible.
	again, err := reg.Push(t.Context(), bin, spec)
	if err != nil {
		t.Fatalf("push again: %v", err)
	}
	if again != img {
		t.Errorf("second push = %+v, want %+v", again, img)
	}
	other := spec
	other.Version, other.Tag = "2.0.0", "v2"
	v2, err := reg.Push(t.Context(), bin, other)
	if err != nil {
		t.Fatalf("push v2: %v", err)
	}
	if v2.Digest == img.Digest || v2.ID == img.ID {
		t.Errorf("different versions share digests: %+v %+v", img, v2)
	}

	ref, err := name.ParseReference(img.Ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("fetch image: %v", err)
	}
	if mt, _ := got.MediaType(); mt != types.DockerManifestSchema2 {
		t.Errorf("manifest media type %s", mt)
	}
	cf, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/app"}) {
		t.Errorf("Entrypoint %v", c.Entrypoint)
	}
	if want := []string{"DEMO_VERSION=1.0.0", "DEMO_MODE=slow-start", "DEMO_SLOW=2s"}; !slices.Equal(c.Env, want) {
		t.Errorf("Env %v, want %v", c.Env, want)
	}
	if c.Labels["a"] != "b" {
		t.Errorf("Labels %v", c.Labels)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if len(c.Volumes) != 0 {
		t.Errorf("Volumes %v, want none", c.Volumes)
	}
	hc := c.Healthcheck
	if hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/app", "health"}) || hc.Interval != time.Second ||
		hc.Timeout != 2*time.Second || hc.Retries != 3 || hc.StartPeriod != 0 {
		t.Errorf("Healthcheck %+v", hc)
	}

	layers, err := got.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.DockerLayer {
		t.Errorf("layer media type %s", mt)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
		modes[h.Name] = h.Mode
	}
	wantNames := []string{"app", "data/", "migrations/", "migrations/0001_init.up.sql"}
	if names := slices.Sorted(maps.Keys(files)); !slices.Equal(names, wantNames) {
		t.Errorf("layer holds %v, want %v", names, wantNames)
	}
	if files["app"] != "#!fake binary" || modes["app"] != 0o755 {
		t.Errorf("/app: mode %o content %q", modes["app"], files["app"])
	}
	if files["migrations/0001_init.up.sql"] != "SELECT 1;" {
		t.Errorf("migration = %q", files["migrations/0001_init.up.sql"])
	}
}

func TestPushRejectsBadSpecs(t *testing.T) {
	reg := StartTestRegistry(t)
	bin := filepath.Join(t.TempDir(), "demoapp")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec ImageSpec
		bin  string
	}{
		{name: "no repo", spec: ImageSpec{Tag: "v1"}, bin: bin},
		{name: "missing binary", spec: ImageSpec{Repo: "r"}, bin: filepath.Join(t.TempDir(), "nope")},
		{name: "extra overwrites app", spec: ImageSpec{Repo: "r", Extra: map[string]string{"/app": "x"}}, bin: bin},
		{name: "extra below a file", spec: ImageSpec{Repo: "r", Extra: map[string]string{"/a": "x", "/a/b": "y"}}, bin: bin},
		{name: "bad tag", spec: ImageSpec{Repo: "r", Tag: "no spaces"}, bin: bin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := reg.Push(t.Context(), tt.bin, tt.spec); err == nil {
				t.Fatal("Push succeeded, want an error")
			}
		})
	}
}

func TestLayerContentIsDeterministic(t *testing.T) {
	extra := map[string]string{"/z/1": "1", "/a/b/c": "2", "/m": "3"}
	first, err := layerContent([]byte("bin"), extra)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := layerContent([]byte("bin"), extra)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("layer bytes differ between identical calls")
		}
	}
}
