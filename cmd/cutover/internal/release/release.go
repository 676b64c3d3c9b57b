// Package release finds release images in a registry and pins them to
// digests. `cutover release latest` picks the newest semver tag of a
// repository (or the newest patch of the running major.minor, for minor
// updates); `cutover release pin` rewrites a release manifest so that every
// image is pinned to the digest its tag has now, so the plan reviewed is the
// plan executed even if a tag moves. It runs in the CLI, never in a service.
package release

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// defaultTimeout bounds a registry call when the caller's ctx has no deadline.
const defaultTimeout = 30 * time.Second

// ErrNoVersion is returned by Newest and Latest when no tag is a release
// version (or none matches the current major.minor with PatchOnly).
var ErrNoVersion = errors.New("no matching semver tag")

// Options selects the tag Latest picks.
type Options struct {
	// PatchOnly restricts the choice to Current's major.minor.
	PatchOnly bool
	// Current is the tag running now; required with PatchOnly.
	Current string
	// Insecure allows plain HTTP (registries on localhost and private
	// addresses are reached over HTTP anyway).
	Insecure bool
}

// Image is a tag resolved to its manifest digest.
type Image struct {
	// Tag is the tag picked, as the registry lists it.
	Tag string `json:"tag"`
	// Digest is its manifest digest, sha256:....
	Digest string `json:"digest"`
	// Ref is the pinned reference, registry/repo@sha256:....
	Ref string `json:"ref"`
}

// version is a parsed MAJOR.MINOR.PATCH tag, with an optional leading v.
type version struct{ major, minor, patch int }

// parse reads a release version; pre-releases (1.2.3-rc1) and build
// metadata are not releases, so they do not parse.
func parse(tag string) (version, bool) {
	parts := strings.Split(strings.TrimPrefix(tag, "v"), ".")
	if len(parts) != 3 {
		return version{}, false
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || p == "" || (len(p) > 1 && p[0] == '0') {
			return version{}, false
		}
		n[i] = v
	}
	return version{n[0], n[1], n[2]}, true
}

func (a version) less(b version) bool {
	if a.major != b.major {
		return a.major < b.major
	}
	if a.minor != b.minor {
		return a.minor < b.minor
	}
	return a.patch < b.patch
}

// Newest returns the newest release version among tags; with patchOnly, the
// newest of current's major.minor (current itself when nothing is newer).
// Tags that are not MAJOR.MINOR.PATCH (latest, 1.2, 1.2.3-rc1) are ignored.
// When two tags name the same version (v1.2.3 and 1.2.3), the first sorted wins.
func Newest(tags []string, current string, patchOnly bool) (string, error) {
	var cur version
	if patchOnly {
		var ok bool
		if cur, ok = parse(current); !ok {
			return "", fmt.Errorf("pick newest patch: current tag %q is not MAJOR.MINOR.PATCH; give the tag running now, e.g. --current 2.4.1", current)
		}
	}
	sorted := append([]string(nil), tags...)
	sort.Strings(sorted)
	best, found := "", false
	var bestV version
	for _, t := range sorted {
		v, ok := parse(t)
		if !ok || patchOnly && (v.major != cur.major || v.minor != cur.minor) {
			continue
		}
		if !found || bestV.less(v) {
			best, bestV, found = t, v, true
		}
	}
	if !found {
		if patchOnly {
			return "", fmt.Errorf("pick newest patch of %d.%d: %w among %d tags", cur.major, cur.minor, ErrNoVersion, len(tags))
		}
		return "", fmt.Errorf("pick newest version: %w among %d tags (tags must be MAJOR.MINOR.PATCH, optionally with a v)", ErrNoVersion, len(tags))
	}
	return best, nil
}

func nameOpts(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

func remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// Latest lists the tags of registry/repo, picks the newest as Newest does,
// and resolves it to its digest.
func Latest(ctx context.Context, registry, repo string, opts Options) (Image, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	r, err := name.NewRepository(strings.TrimSuffix(registry, "/")+"/"+strings.TrimPrefix(repo, "/"), nameOpts(opts.Insecure)...)
	if err != nil {
		return Image{}, fmt.Errorf("parse repository %s/%s: %w", registry, repo, err)
	}
	tags, err := remote.List(r, remoteOpts(ctx)...)
	if err != nil {
		return Image{}, fmt.Errorf("list tags of %s: %w (check --registry and --repo, and your registry login)", r, err)
	}
	tag, err := Newest(tags, opts.Current, opts.PatchOnly)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", r, err)
	}
	digest, err := Digest(ctx, r.Tag(tag).String(), opts.Insecure)
	if err != nil {
		return Image{}, err
	}
	return Image{Tag: tag, Digest: digest, Ref: r.Digest(digest).String()}, nil
}

// Digest returns the manifest digest a reference points to now.
func Digest(ctx context.Context, ref string, insecure bool) (string, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	r, err := name.ParseReference(ref, nameOpts(insecure)...)
	if err != nil {
		return "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	if d, ok := r.(name.Digest); ok {
		return d.DigestStr(), nil
	}
	desc, err := remote.Head(r, remoteOpts(ctx)...)
	if err != nil {
		return "", fmt.Errorf("resolve digest of %s: %w (is the registry reachable and the tag pushed?)", ref, err)
	}
	return desc.Digest.String(), nil
}

// Pin returns ref pinned to its current digest: repository@sha256:....
// A reference that already has a digest is returned unchanged.
func Pin(ctx context.Context, ref string, insecure bool) (string, error) {
	r, err := name.ParseReference(ref, nameOpts(insecure)...)
	if err != nil {
		return "", fmt.Errorf("parse image reference %q: %w", ref, err)
	}
	if _, ok := r.(name.Digest); ok {
		return ref, nil
	}
	d, err := Digest(ctx, ref, insecure)
	if err != nil {
		return "", err
	}
	return r.Context().Digest(d).String(), nil
}
