package migrator

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/golang-migrate/migrate/v4/source"
)

// Phases of a migration request and markers of migration files.
const (
	// PhaseExpand applies the unmarked and expand migrations after the
	// current version, up to (not including) the first contract migration.
	PhaseExpand = "expand"
	// PhaseContract applies every migration after the current version, up
	// to the target: what expand left, contract migrations included.
	PhaseContract = "contract"
	// PhaseMigrate is the middle phase of a command migration (keystone-manage
	// db_sync --migrate): run after the roll, before the contract.
	PhaseMigrate = "migrate"
	// PhaseAll applies every migration up to the target (the default).
	PhaseAll = "all"
)

// ReadSource lists the migrations in dir by ascending version. Files follow
// golang-migrate's naming, NNNN_title.up.sql and NNNN_title.down.sql; an up
// file named NNNN_title.expand.up.sql or NNNN_title.contract.up.sql carries a
// phase (its down file may carry the marker too). Other files are ignored, as
// golang-migrate does. Each Migration carries the SHA-256 of its up file.
func ReadSource(dir string) ([]Migration, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list migrations in %s: %w", dir, err)
	}
	byVersion := map[uint]*Migration{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		p, err := source.DefaultParse(e.Name())
		if err != nil {
			continue
		}
		name, phase := p.Identifier, ""
		for _, ph := range []string{PhaseExpand, PhaseContract} {
			if base, ok := strings.CutSuffix(name, "."+ph); ok {
				name, phase = base, ph
				break
			}
		}
		mg := byVersion[p.Version]
		if mg == nil {
			mg = &Migration{Version: p.Version, Name: name}
			byVersion[p.Version] = mg
		}
		slot := &mg.Up
		if p.Direction == source.Down {
			slot = &mg.Down
		}
		if *slot != "" {
			return nil, fmt.Errorf("list migrations in %s: %s and %s are both %s migrations of version %d; keep one", dir, *slot, e.Name(), p.Direction, p.Version)
		}
		*slot = e.Name()
		if p.Direction == source.Up {
			mg.Phase = phase
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("read migration %s in %s: %w", e.Name(), dir, err)
			}
			sum := sha256.Sum256(b)
			mg.SHA256 = hex.EncodeToString(sum[:])
		}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, mg := range byVersion {
		if mg.Up == "" {
			return nil, fmt.Errorf("list migrations in %s: version %d has a down file (%s) but no up file", dir, mg.Version, mg.Down)
		}
		out = append(out, *mg)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// CheckSource refuses a source that golang-migrate would apply wrongly or
// silently skip, before anything runs on a database at version current with
// the ledger applied (Database.Applied). Gaps between versions are not
// problems: golang-migrate steps from one existing version to the next, and
// real projects leave holes (a version 0 is a version like any other). It
// checks, in this order, and returns every problem found, joined:
//
//   - an applied file missing: a version in the ledger (or the current
//     version) that the source does not have;
//   - the database's own version missing from the source (when the ledger
//     does not already name its file);
//   - an applied file changed: an up file whose SHA-256 differs from the one
//     recorded when it was applied;
//   - a file never applied below the current version: a version at or below
//     current that the ledger does not list (golang-migrate never applies
//     it). Only checked once the database has a ledger;
//   - a missing down file where down is required (requireDown): a migration
//     in (current, target] without a down file.
func CheckSource(migs []Migration, current, target uint, applied []Applied, requireDown bool) error {
	var errs []error
	known := map[uint]Migration{}
	for _, mg := range migs {
		known[mg.Version] = mg
	}
	ledger := map[uint]Applied{}
	for _, a := range applied {
		ledger[a.Version] = a
		mg, ok := known[a.Version]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("applied migration %s (version %d) is missing from the source; put the file back (a source must keep every applied migration)", a.File, a.Version))
		case mg.SHA256 != a.SHA256:
			errs = append(errs, fmt.Errorf("applied migration %s (version %d) changed since it was applied at %s (sha256 %.12s then, %.12s now); restore the original file and put the change in a new migration",
				mg.Up, mg.Version, a.AppliedAt.UTC().Format("2006-01-02T15:04:05Z"), a.SHA256, mg.SHA256))
		}
	}
	if _, ok := known[current]; !ok && current != 0 {
		if _, listed := ledger[current]; !listed {
			errs = append(errs, fmt.Errorf("applied migration version %d (the database's version) is missing from the source; put the file back (a source must keep every applied migration)", current))
		}
	}
	if len(applied) > 0 {
		for _, mg := range migs {
			if _, ok := ledger[mg.Version]; mg.Version <= current && !ok {
				errs = append(errs, fmt.Errorf("migration %s (version %d) is at or below the database's version %d but was never applied; golang-migrate would skip it silently: renumber it above %d",
					mg.Up, mg.Version, current, current))
			}
		}
	}
	if requireDown {
		var missing []string
		for _, mg := range migs {
			if mg.Version > current && mg.Version <= target && mg.Down == "" {
				missing = append(missing, downName(mg))
			}
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("down migrations are required and %s missing; add them or turn off Config.RequireDown", strings.Join(missing, ", ")+plural(len(missing), " is", " are")))
		}
	}
	return errors.Join(errs...)
}

// downName is the name the down file of mg would have.
func downName(mg Migration) string {
	if mg.Up == "" {
		return fmt.Sprintf("version %d", mg.Version)
	}
	return strings.Replace(mg.Up, ".up.", ".down.", 1)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// phaseTarget narrows the target of a request to its phase: for expand, the
// last version before the first contract migration after from (from itself
// when the next migration is a contract one).
func phaseTarget(migs []Migration, from, target uint, phase string) uint {
	if phase != PhaseExpand {
		return target
	}
	last := from
	for _, mg := range migs {
		if mg.Version <= from || mg.Version > target {
			continue
		}
		if mg.Phase == PhaseContract {
			break
		}
		last = mg.Version
	}
	return last
}
