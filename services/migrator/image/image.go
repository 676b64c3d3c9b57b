// Package image reads a migration directory out of a container image through
// its registry (go-containerregistry), without a Docker engine: the image's
// layers are flattened (whiteouts applied) and the regular files directly in
// the directory are written to a local directory. It implements
// migrator.SourceFetcher, which the migrator uses for sources named
// "image:<ref>[#/dir]".
//
// Registries on loopback, localhost or private addresses are reached over
// plain HTTP (go-containerregistry's rule); credentials come from the Docker
// config (~/.docker/config.json), as docker pull would use them.
package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cutover-dev/cutover/services/migrator"
)

// MaxFileSize bounds one migration file read out of an image.
const MaxFileSize = 64 << 20

// Fetcher reads directories out of images in registries.
type Fetcher struct {
	// Options are added to every registry call (e.g. remote.WithTransport).
	Options []remote.Option
}

var _ migrator.SourceFetcher = Fetcher{}

// Fetch copies the regular files directly inside directory dir of image ref
// into the existing directory dst. It fails when dir holds no file.
func (f Fetcher) Fetch(ctx context.Context, ref, dir, dst string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("read migrations from image %q: %w (want registry/repo:tag or repo@sha256:...)", ref, err)
	}
	opts := append([]remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, f.Options...)
	img, err := remote.Image(r, opts...)
	if err != nil {
		return fmt.Errorf("read migrations from image %s: %w (check the reference and that the registry is reachable)", ref, err)
	}
	want := strings.Trim(path.Clean("/"+dir), "/")
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read migrations from image %s: %w", ref, err)
		}
		p := strings.Trim(path.Clean("/"+h.Name), "/")
		if path.Dir(p) != want || h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > MaxFileSize {
			return fmt.Errorf("read migrations from image %s: %s is %d bytes, over the %d limit for a migration file", ref, p, h.Size, MaxFileSize)
		}
		out, err := os.OpenFile(filepath.Join(dst, path.Base(p)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("read migrations from image %s: %w", ref, err)
		}
		_, err = io.Copy(out, io.LimitReader(tr, MaxFileSize))
		if err = errors.Join(err, out.Close()); err != nil {
			return fmt.Errorf("read migrations from image %s: write %s: %w", ref, path.Base(p), err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("read migrations from image %s: no files in /%s; set the service's migrations directory (source image:%s#/path)", ref, want, ref)
	}
	return nil
}
