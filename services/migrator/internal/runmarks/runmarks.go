// Package runmarks keeps, next to a database's snapshots, the record of the
// migrator's runs that followed them: for each run, the state of the
// database at its start and, once it succeeded, at its end (its mark). A
// driver's WrittenAfter counts the writes from a snapshot to now without
// those between a run's start and its mark: the run's own.
//
// A record is a small JSON file <snapshot id>.run in the directory the
// driver keeps its snapshots or their labels in (the snapshot directory of
// SQLite, the dump directory of PostgreSQL and MariaDB). It lives outside
// the database, so a database rolled back through its down files is the
// database it was; a restore forgets the records of the runs it undoes
// (Forget), and DropSnapshot removes a snapshot's with it.
package runmarks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
)

// Suffix ends a record's file name, after its snapshot's id.
const Suffix = ".run"

// Record is one run of the migrator, stored next to the snapshot taken
// just before it.
type Record struct {
	// Run is the request that started the run.
	Run string `json:"run"`
	// Snapshot is the snapshot taken just before it.
	Snapshot string `json:"snapshot"`
	// Started is when it started (its snapshot's time).
	Started time.Time `json:"started"`
	// Start is the driver's record of the database at the start ("" when
	// the snapshot is the record).
	Start string `json:"start,omitempty"`
	// Ended is when its mark was taken; zero when it has none (it failed,
	// or stopped midway).
	Ended time.Time `json:"ended,omitzero"`
	// End is the driver's record of the database at the mark.
	End string `json:"end,omitempty"`
}

// Marked reports whether the run has a mark.
func (r Record) Marked() bool { return !r.Ended.IsZero() }

func path(dir, snapshot string) string { return filepath.Join(dir, snapshot+Suffix) }

// valid refuses a snapshot id that would name a file outside dir.
func valid(snapshot string) error {
	if snapshot == "" || strings.ContainsAny(snapshot, `/\`) || snapshot == "." || snapshot == ".." {
		return fmt.Errorf("snapshot id %q cannot name a run record", snapshot)
	}
	return nil
}

// lastRunner reads the run in progress from a database's ledger
// (migrator.Database.LastRun).
type lastRunner interface {
	LastRun(ctx context.Context) (*migrator.Run, error)
}

// Current returns the run in progress on db (key names it in errors), the
// one MarkRun marks: an error when none is recorded.
func Current(ctx context.Context, db lastRunner, key string) (migrator.Run, error) {
	run, err := db.LastRun(ctx)
	if err != nil {
		return migrator.Run{}, err
	}
	if run == nil {
		return migrator.Run{}, fmt.Errorf("mark the end of the run on %s: no run in progress is recorded", key)
	}
	return *run, nil
}

// Start records the start of run, with the driver's state (may be "").
func Start(dir string, run migrator.Run, state string) error {
	return write(dir, Record{Run: run.ID, Snapshot: run.Snapshot, Started: run.Started.UTC(), Start: state})
}

// End records the mark of run, with the driver's state, now.
func End(dir string, run migrator.Run, state string) error {
	r, err := Read(dir, run.Snapshot)
	if err != nil {
		return err
	}
	if r.Run != run.ID {
		return fmt.Errorf("mark run %s: the record of snapshot %s is of run %s", run.ID, run.Snapshot, r.Run)
	}
	r.Ended, r.End = time.Now().UTC(), state
	return write(dir, r)
}

// write stores r through a temporary file renamed into place.
func write(dir string, r Record) error {
	if err := valid(r.Snapshot); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record run %s: %w", r.Run, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("record run %s: %w", r.Run, err)
	}
	p := path(dir, r.Snapshot)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("record run %s: %w", r.Run, err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		_ = os.Remove(p + ".tmp")
		return fmt.Errorf("record run %s: %w", r.Run, err)
	}
	return nil
}

// Read returns the record of the run that followed snapshot.
func Read(dir, snapshot string) (Record, error) {
	var r Record
	if err := valid(snapshot); err != nil {
		return r, err
	}
	b, err := os.ReadFile(path(dir, snapshot))
	if err != nil {
		return r, fmt.Errorf("read the run record of snapshot %s: %w", snapshot, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("read the run record of snapshot %s: %w", snapshot, err)
	}
	return r, nil
}

// Since returns the records in dir of snapshots whose ids start with
// prefix and of runs that started at or after t, by start: the runs a
// restore of a snapshot taken at t undoes. An unreadable record is left out.
func Since(dir, prefix string, t time.Time) ([]Record, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list run records in %s: %w", dir, err)
	}
	var out []Record
	for _, e := range entries {
		snap, ok := strings.CutSuffix(e.Name(), Suffix)
		if !ok || !strings.HasPrefix(snap, prefix) {
			continue
		}
		r, err := Read(dir, snap)
		if err != nil || r.Snapshot != snap || r.Started.Before(t) {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Record) int { return a.Started.Compare(b.Started) })
	return out, nil
}

// Forget removes the records Since returns, after a restore of a snapshot
// taken at t undid their runs, and returns them.
func Forget(dir, prefix string, t time.Time) ([]Record, error) {
	recs, err := Since(dir, prefix, t)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, r := range recs {
		errs = append(errs, Remove(dir, r.Snapshot))
	}
	return recs, errors.Join(errs...)
}

// Remove deletes the record of snapshot, if any.
func Remove(dir, snapshot string) error {
	if err := valid(snapshot); err != nil {
		return err
	}
	if err := os.Remove(path(dir, snapshot)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the run record of snapshot %s: %w", snapshot, err)
	}
	return nil
}

// Orphans returns the paths of the records in dir of snapshots whose ids
// start with prefix, for which exists reports false, and of temporary
// records left by a write cut short.
func Orphans(dir, prefix string, exists func(snapshot string) bool) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if strings.HasSuffix(name, Suffix+".tmp") {
			out = append(out, filepath.Join(dir, name))
		} else if snap, ok := strings.CutSuffix(name, Suffix); ok && !exists(snap) {
			out = append(out, filepath.Join(dir, name))
		}
	}
	return out
}
