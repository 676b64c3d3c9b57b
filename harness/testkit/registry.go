package testkit

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushTimeout bounds a push when the caller's ctx has no deadline.
const pushTimeout = 2 * time.Minute

// layerTime is the fixed timestamp of every file and of the image config, so
// equal specs give equal digests.
var layerTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Registry is an in-memory image registry served over plain HTTP on
// 127.0.0.1 for the life of the process that started it. Images live only in
// memory and disappear on Close.
type Registry struct {
	srv  *http.Server
	addr string
	done chan struct{} // closed when Serve returns
	err  error         // Serve's result, readable after done
}

// StartRegistry listens on 127.0.0.1 at a free port and serves a registry
// there until Close. ctx bounds only the listen call.
func StartRegistry(ctx context.Context) (*Registry, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for registry: %w", err)
	}
	// Per-request logs are noise at Info; keep them at Debug.
	reqLog := slog.NewLogLogger(slog.Default().Handler().WithAttrs([]slog.Attr{slog.String("component", "testkit-registry")}), slog.LevelDebug)
	r := &Registry{
		srv: &http.Server{
			Handler:           registry.New(registry.Logger(reqLog)),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          reqLog,
		},
		addr: ln.Addr().String(),
		done: make(chan struct{}),
	}
	go func() {
		defer close(r.done)
		if err := r.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			r.err = err
		}
	}()
	return r, nil
}

// Addr returns the registry's host:port, "127.0.0.1:PORT", which is also the
// registry part of every image reference it serves.
func (r *Registry) Addr() string { return r.addr }

// Close stops the registry, waiting for in-flight requests until ctx ends and
// then dropping them.
func (r *Registry) Close(ctx context.Context) error {
	// Shutdown waits for connections to go idle; a client that opened a
	// connection it never used (Go's transport dials ahead) keeps it "new"
	// for seconds. When ctx ends first, the remaining connections are
	// dropped, as documented, which is not a failure.
	var err error
	if serr := r.srv.Shutdown(ctx); serr != nil {
		if cerr := r.srv.Close(); cerr != nil {
			err = fmt.Errorf("shut down registry: %w", errors.Join(serr, cerr))
		}
	}
	<-r.done
	if r.err != nil {
		err = errors.Join(err, fmt.Errorf("serve registry: %w", r.err))
	}
	return err
}

// ImageSpec describes a demo image. The zero value of each field is usable
// except Repo.
type ImageSpec struct {
	// Repo is the repository path inside the registry, e.g. "shop/web".
	Repo string
	// Tag defaults to "latest".
	Tag string
	// Version becomes DEMO_VERSION; empty leaves the app's default "dev".
	Version string
	// Mode becomes DEMO_MODE (healthy, never-healthy, crash, slow-start,
	// workload-host); empty leaves the app's default "healthy".
	Mode string
	// Env is appended to the image's environment after DEMO_VERSION and
	// DEMO_MODE, so it can override them or set DEMO_SLOW and friends.
	Env []string
	// Labels are image labels.
	Labels map[string]string
	// Healthcheck adds a Docker HEALTHCHECK running `/app health` every
	// second (timeout 2s, 3 retries, no start period).
	Healthcheck bool
	// Entrypoint replaces the image's entrypoint (default ["/app"]); a path
	// that does not exist in the image makes a container that fails to start.
	Entrypoint []string
	// Extra adds files to the image: absolute path in the image -> content,
	// e.g. "/migrations/0001_init.up.sql". Parent directories are created.
	Extra map[string]string
}

// Image identifies a pushed image.
type Image struct {
	// Ref is the pullable tag reference, "127.0.0.1:PORT/repo:tag".
	Ref string
	// Digest is the manifest digest, "sha256:..."; Ref's repo plus "@"+Digest
	// pins exactly this image.
	Digest string
	// ID is the config digest, "sha256:...", which Docker reports as the image
	// ID (ImageInspect's ID and a container's Image field).
	ID string
}

// Push builds an image around the demoapp binary at binPath and pushes it to
// the registry under spec.Repo:spec.Tag.
//
// The image has a single layer holding /app (the binary, mode 0755), an
// empty /data directory and spec.Extra; its entrypoint is /app and it exposes
// 8080/tcp. It declares no VOLUME: volumes are the container's business.
// Docker (not OCI) media types are used, which every Docker release accepts.
func (r *Registry) Push(ctx context.Context, binPath string, spec ImageSpec) (Image, error) {
	ctx, cancel := withDefaultTimeout(ctx, pushTimeout)
	defer cancel()

	if spec.Repo == "" {
		return Image{}, errors.New("push image: ImageSpec.Repo is empty")
	}
	tag := spec.Tag
	if tag == "" {
		tag = "latest"
	}
	ref, err := name.NewTag(r.addr+"/"+spec.Repo+":"+tag, name.Insecure)
	if err != nil {
		return Image{}, fmt.Errorf("parse image reference %q: %w", spec.Repo+":"+tag, err)
	}
	img, err := buildImage(binPath, spec)
	if err != nil {
		return Image{}, fmt.Errorf("build image %s: %w", ref, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return Image{}, fmt.Errorf("push image %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return Image{}, fmt.Errorf("digest image %s: %w", ref, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return Image{}, fmt.Errorf("digest config of %s: %w", ref, err)
	}
	return Image{Ref: ref.String(), Digest: digest.String(), ID: id.String()}, nil
}

func buildImage(binPath string, spec ImageSpec) (v1.Image, error) {
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("read demoapp binary: %w", err)
	}
	layerTar, err := layerContent(bin, spec.Extra)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}

	var env []string
	if spec.Version != "" {
		env = append(env, "DEMO_VERSION="+spec.Version)
	}
	if spec.Mode != "" {
		env = append(env, "DEMO_MODE="+spec.Mode)
	}
	env = append(env, spec.Env...)
	entrypoint := []string{"/app"}
	if len(spec.Entrypoint) > 0 {
		entrypoint = slices.Clone(spec.Entrypoint)
	}
	cfg := &v1.ConfigFile{
		Architecture: runtime.GOARCH,
		OS:           "linux",
		Created:      v1.Time{Time: layerTime},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint:   entrypoint,
			Env:          env,
			Labels:       maps.Clone(spec.Labels),
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
			WorkingDir:   "/",
		},
	}
	if spec.Healthcheck {
		cfg.Config.Healthcheck = &v1.HealthConfig{
			Test:     []string{"CMD", "/app", "health"},
			Interval: time.Second,
			Timeout:  2 * time.Second,
			Retries:  3,
		}
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: layerTime},
			CreatedBy: "cutover testkit: demoapp " + spec.Version,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	return img, nil
}

// layerContent returns an uncompressed tar with /app, /data and extra files.
// Entries are sorted and timestamped with layerTime so the digest depends on
// content alone.
func layerContent(bin []byte, extra map[string]string) ([]byte, error) {
	type entry struct {
		dir  bool
		mode int64
		data []byte
	}
	entries := map[string]entry{
		"app":  {mode: 0o755, data: bin},
		"data": {dir: true, mode: 0o777},
	}
	for p, content := range extra {
		clean := strings.TrimPrefix(path.Clean("/"+p), "/")
		if clean == "" || clean == "app" || clean == "data" {
			return nil, fmt.Errorf("add extra file %q: path is reserved or empty", p)
		}
		if existing, ok := entries[clean]; ok && existing.dir {
			return nil, fmt.Errorf("add extra file %q: path is a directory", p)
		}
		entries[clean] = entry{mode: 0o644, data: []byte(content)}
		for d := path.Dir(clean); d != "."; d = path.Dir(d) {
			parent, ok := entries[d]
			if !ok {
				entries[d] = entry{dir: true, mode: 0o755}
			} else if !parent.dir {
				return nil, fmt.Errorf("add extra file %q: parent %q is a file", p, d)
			}
		}
	}

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		e := entries[p]
		hdr := &tar.Header{Name: p, Mode: e.mode, ModTime: layerTime, Format: tar.FormatPAX}
		if e.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write layer entry %s: %w", p, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("write layer file %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer tar: %w", err)
	}
	return buf.Bytes(), nil
}
