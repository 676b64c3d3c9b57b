package migrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// SourceFetcher copies a migration directory out of an image.
type SourceFetcher interface {
	// Fetch copies the regular files of directory dir inside image ref (a
	// registry reference) into the existing local directory dst.
	Fetch(ctx context.Context, ref, dir, dst string) error
}

// ImageSourcePrefix starts a request's source that names an image:
// "image:<ref>" reads DefaultImageDir, "image:<ref>#/path" reads /path.
const ImageSourcePrefix = "image:"

// DefaultImageDir is the migrations directory read out of an image when the
// source names none.
const DefaultImageDir = "/migrations"

// ParseImageSource splits a source "image:<ref>[#/path]" into the image
// reference and the directory; ok is false for any other source.
func ParseImageSource(src string) (ref, dir string, ok bool) {
	rest, ok := strings.CutPrefix(src, ImageSourcePrefix)
	if !ok {
		return "", "", false
	}
	ref, dir, _ = strings.Cut(rest, "#")
	if dir == "" {
		dir = DefaultImageDir
	}
	return ref, dir, true
}

// fetchSource returns the local directory of a request's source: the source
// itself, or a temporary copy of an image's directory that cleanup removes.
func (m *Migrator) fetchSource(ctx context.Context, src string) (dir string, cleanup func(), err error) {
	ref, inImage, ok := ParseImageSource(src)
	if !ok {
		return src, func() {}, nil
	}
	if ref == "" || !strings.HasPrefix(inImage, "/") {
		return "", nil, fmt.Errorf("source %q: want image:<ref> or image:<ref>#/absolute/dir", src)
	}
	if m.cfg.Images == nil {
		return "", nil, fmt.Errorf("source %s: this migrator cannot read images; wire Config.Images (migrator/image)", src)
	}
	tmp, err := os.MkdirTemp("", "cutover-migrations-")
	if err != nil {
		return "", nil, fmt.Errorf("fetch source %s: %w", src, err)
	}
	cleanup = func() { _ = os.RemoveAll(tmp) }
	if err := m.cfg.Images.Fetch(ctx, ref, inImage, tmp); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("fetch source %s: %w", src, err)
	}
	return tmp, cleanup, nil
}

// ListSnapshots returns the snapshots of the database at location, newest
// first, each inspected (version and dirty flag read) when it can be; one
// that cannot is listed with its ID, Time and Location only. It is what
// `cutover snapshots list` prints.
func ListSnapshots(ctx context.Context, drv Driver, location string) ([]Snapshot, error) {
	db, err := drv.Open(ctx, location, "")
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer db.Close()
	listed, err := db.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for i, s := range listed {
		if full, err := db.Inspect(ctx, s.ID); err == nil {
			listed[i] = full
		}
	}
	return listed, nil
}

// PruneSnapshots drops the snapshots of the database at location beyond the
// keep newest (keep >= 1) and returns the dropped ones. It stops at the first
// snapshot it cannot drop. It is what `cutover snapshots prune --keep N`
// runs; run it when no migration of that database is in progress.
func PruneSnapshots(ctx context.Context, drv Driver, location string, keep int) ([]Snapshot, error) {
	if keep < 1 {
		return nil, fmt.Errorf("prune snapshots of %s: keep %d must be at least 1", redact(location), keep)
	}
	db, err := drv.Open(ctx, location, "")
	if err != nil {
		return nil, fmt.Errorf("prune snapshots: %w", err)
	}
	defer db.Close()
	return prune(ctx, db, keep)
}

func prune(ctx context.Context, db Database, keep int) ([]Snapshot, error) {
	listed, err := db.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var dropped []Snapshot
	for i := keep; i < len(listed); i++ {
		s := listed[i]
		// Snapshots lists ids and times only: read the version, so that what
		// was removed is named by what it held.
		if full, err := db.Inspect(ctx, s.ID); err == nil {
			s = full
		}
		if err := db.DropSnapshot(ctx, s.ID); err != nil && !errors.Is(err, ErrSnapshotNotFound) {
			return dropped, fmt.Errorf("prune snapshots: %w", err)
		}
		dropped = append(dropped, s)
	}
	return dropped, nil
}

// leftoverSweeper is a Database whose snapshots and restores can leave
// partial files behind when the process dies midway (a temporary copy, or a
// checksum whose snapshot never got its name).
type leftoverSweeper interface {
	// SweepLeftovers removes those files and returns their paths. Nothing
	// else may snapshot or restore the database meanwhile.
	SweepLeftovers(ctx context.Context) ([]string, error)
}

// SweepLeftovers removes the partial files that a snapshot or restore of
// the database at location left when its process died midway, and returns
// their paths; nil for a driver that leaves none. It is what `cutover
// snapshots prune` runs after pruning; run it when no migration of that
// database is in progress.
func SweepLeftovers(ctx context.Context, drv Driver, location string) ([]string, error) {
	db, err := drv.Open(ctx, location, "")
	if err != nil {
		return nil, fmt.Errorf("sweep snapshot leftovers: %w", err)
	}
	defer db.Close()
	if s, ok := db.(leftoverSweeper); ok {
		return s.SweepLeftovers(ctx)
	}
	return nil, nil
}

// prune applies Config.KeepSnapshots after a migration, and removes what an
// earlier snapshot or restore cut short left behind; a failure only logs:
// the migration itself succeeded.
func (m *Migrator) prune(ctx context.Context, db Database, log *slog.Logger) {
	if s, ok := db.(leftoverSweeper); ok {
		swept, err := s.SweepLeftovers(ctx)
		if err != nil {
			log.Warn("remove files left by an interrupted snapshot or restore", "err", err)
		}
		for _, p := range swept {
			log.Info("removed a file left by an interrupted snapshot or restore", "path", p)
		}
	}
	if m.cfg.KeepSnapshots == KeepAllSnapshots {
		return
	}
	dropped, err := prune(ctx, db, m.cfg.KeepSnapshots)
	if err != nil {
		log.Warn("drop old snapshots; they stay until the next migration or `cutover snapshots prune`", "err", err)
	}
	for _, s := range dropped {
		log.Info("dropped old snapshot", "snapshot", s.ID, "version", s.Version, "dirty", s.Dirty, "taken", s.Time)
	}
}
