package release

import (
	"context"
	"fmt"
	"os"

	"github.com/cutover-dev/cutover/services/planner/manifest"
)

// Load reads a release manifest, pinning its images to digests
// first when pin is set (cutover plan --pin).
func Load(ctx context.Context, file string, pin, insecure bool) (manifest.Release, error) {
	if !pin {
		return manifest.LoadRelease(file)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return manifest.Release{}, fmt.Errorf("read release manifest: %w", err)
	}
	pinned, err := PinManifest(ctx, raw, insecure)
	if err != nil {
		return manifest.Release{}, fmt.Errorf("%s: %w", file, err)
	}
	return manifest.ParseRelease(file, pinned)
}
