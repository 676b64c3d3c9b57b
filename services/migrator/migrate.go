package migrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// migrate handles a migration request. It answers with migration.completed
// or migration.failed and returns nil, except when the database is locked or
// the answer cannot be published: then the request is redelivered.
func (m *Migrator) migrate(ctx context.Context, e events.Event, req events.MigrationRequested) error {
	database := redact(req.Database)
	log := m.log.With("request", e.ID(), "upgrade", events.UpgradeID(e), "database", database)
	// failed answers a failure; fail does too, unless shutdown caused it
	// before anything changed: then the request is redelivered instead.
	failed := func(f events.MigrationFailed) error {
		f.Database = database
		log.Warn("migration failed", "file", f.File, "err", f.Error, "state", f.State)
		return m.finish(ctx, e, f, log)
	}
	fail := func(f events.MigrationFailed) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate %s: interrupted by shutdown before any change; the request will be redelivered: %w", database, err)
		}
		return failed(f)
	}
	untouched := "unchanged: the migrator did not touch the database"

	switch req.Phase {
	case "", PhaseAll, PhaseExpand, PhaseContract:
	default:
		return fail(events.MigrationFailed{Error: fmt.Sprintf("phase %q is unknown; send expand, contract or all", req.Phase), State: untouched})
	}
	db, release, refused, err := m.prepare(ctx, req.Driver, req.Source, req.Database, database, e.ID(), log)
	if refused != nil {
		return fail(events.MigrationFailed{Error: refused.Error(), State: untouched})
	}
	if err != nil {
		return err
	}
	defer release()

	started := time.Now()
	from, dirty, err := db.Version(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), State: "unknown: the migrator could not read the version; check the database"})
	}
	if dirty && !req.Recover {
		return fail(events.MigrationFailed{
			Error:   fmt.Sprintf("database is dirty at version %d: a migration stopped midway before this request", from),
			Version: from,
			State: fmt.Sprintf("dirty at version %d, unchanged; send the request again with recover to restore the newest clean snapshot, "+
				"or repair the database by hand and force its version", from),
		})
	}
	var recovered string
	if dirty {
		snap, err := m.recoverDirty(ctx, db, log)
		if err != nil {
			return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: fmt.Sprintf("dirty at version %d, unchanged", from)})
		}
		from, recovered = snap.Version, snap.ID
	}
	clean := fmt.Sprintf("clean at version %d, unchanged", from)
	if recovered != "" {
		clean = fmt.Sprintf("clean at version %d (restored from snapshot %s)", from, recovered)
	}

	migs, err := db.Migrations(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("refused source %s: %v", req.Source, err), Version: from, State: clean + " (nothing ran)"})
	}
	applied, err := db.Applied(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean})
	}
	target, err := upTarget(migs, from, req.TargetVersion)
	if err != nil {
		// A source that lost applied files says so, rather than that the
		// database is beyond its last file.
		if cerr := CheckSource(migs, from, from, applied, false); cerr != nil {
			return fail(events.MigrationFailed{Error: fmt.Sprintf("refused source %s: %v", req.Source, cerr), Version: from, State: clean + " (nothing ran)"})
		}
		return fail(events.MigrationFailed{Error: fmt.Sprintf("source %s: %v", req.Source, err), Version: from, State: clean})
	}
	target = phaseTarget(migs, from, target, req.Phase)
	if err := CheckSource(migs, from, target, applied, m.cfg.RequireDown); err != nil {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("refused source %s: %v", req.Source, err), Version: from, State: clean + " (nothing ran)"})
	}
	if target == from {
		log.Info("database already at target version", "version", from)
		return m.finish(ctx, e, events.MigrationCompleted{Database: database, FromVersion: from, ToVersion: from, DurationMs: time.Since(started).Milliseconds()}, log)
	}

	snap, err := db.Snapshot(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean + " (no migration runs without a verified snapshot)"})
	}
	log.Info("snapshot taken; migrating", "snapshot", snap.ID, "from", from, "to", target)
	if err := m.publish(ctx, e, events.MigrationStarted{Database: database, FromVersion: from, SnapshotID: snap.ID}); err != nil {
		return err
	}

	// Shutdown does not stop a migration midway: that would leave it dirty.
	runCtx := context.WithoutCancel(ctx)
	if err := db.Up(runCtx, target); err != nil {
		return failed(m.undoAfter(runCtx, db, migs, from, snap, err, log))
	}
	to, dirty, err := db.Version(runCtx)
	if err != nil || dirty || to != target {
		err = errors.Join(err, fmt.Errorf("after migrating, the database is at version %d (dirty %v), want %d", to, dirty, target))
		return failed(m.restoreAfter(runCtx, db, snap, err, log))
	}
	m.prune(runCtx, db, log)
	return m.finish(ctx, e, events.MigrationCompleted{
		Database: database, FromVersion: from, ToVersion: to, SnapshotID: snap.ID,
		DurationMs: time.Since(started).Milliseconds(),
	}, log)
}

// upTarget resolves the version a migration request goes to (0: the latest
// of the source) and checks that the source can take the database there.
func upTarget(migs []Migration, from, requested uint) (uint, error) {
	if len(migs) == 0 {
		return 0, errors.New("has no migrations (files named NNNN_title.up.sql)")
	}
	known := map[uint]bool{}
	for _, mg := range migs {
		known[mg.Version] = true
	}
	target := requested
	if target == 0 {
		target = migs[len(migs)-1].Version
	}
	if !known[target] {
		return 0, fmt.Errorf("has no migration %d (versions %d to %d)", target, migs[0].Version, migs[len(migs)-1].Version)
	}
	if from > target {
		return 0, fmt.Errorf("database is at version %d, beyond target %d; send a migration.rollback.requested to go down", from, target)
	}
	if from != 0 && from != target && !known[from] {
		return 0, fmt.Errorf("has no migration %d, the database's version: this source does not belong to this database", from)
	}
	return target, nil
}

// undoAfter takes the database back to version from after a failed up
// migration. When the failed file rolled back and every version applied in
// this run has a down file, it marks the version before the failed file
// clean and migrates down to from: cheaper than a restore, and what the
// service wrote meanwhile stays (except in what the down files drop).
// Otherwise, or when that fails, it restores the snapshot.
// It describes the result as a migration.failed event.
func (m *Migrator) undoAfter(ctx context.Context, db Database, migs []Migration, from uint, snap Snapshot, cause error, log *slog.Logger) events.MigrationFailed {
	var step *StepError
	if !errors.As(cause, &step) || !step.RolledBack {
		return m.restoreAfter(ctx, db, snap, cause, log)
	}
	reached := from // the version whose schema the database holds now
	for _, mg := range migs {
		if mg.Version > from && mg.Version < step.Version {
			if mg.Down == "" {
				log.Info("a migration applied in this run has no down file; restoring the snapshot", "migration", mg.Up)
				return m.restoreAfter(ctx, db, snap, cause, log)
			}
			reached = mg.Version
		}
	}
	f := events.MigrationFailed{File: step.File, Error: step.Err.Error()}
	log.Info("the failed file rolled back; migrating down", "file", step.File, "from", reached, "to", from)
	err := db.Force(ctx, reached)
	if err == nil {
		err = db.Down(ctx, from)
	}
	if err == nil {
		v, dirty, verr := db.Version(ctx)
		if verr == nil && !dirty && v == from {
			f.Version = v
			f.State = fmt.Sprintf("clean at version %d (down migrations)", v)
			if reached == from {
				f.State = fmt.Sprintf("clean at version %d (the failed file rolled back; no other migration ran)", v)
			}
			return f
		}
		err = errors.Join(verr, fmt.Errorf("after migrating down, the database is %s, want clean at version %d", describe(v, dirty, verr), from))
	}
	log.Warn("migrating down failed; restoring the snapshot", "err", err)
	f = m.restoreAfter(ctx, db, snap, cause, log)
	f.State += fmt.Sprintf(" after migrating down failed: %v", err)
	return f
}

// restoreAfter puts the database back to its snapshot after a failed step
// and describes the result as a migration.failed event.
func (m *Migrator) restoreAfter(ctx context.Context, db Database, snap Snapshot, cause error, log *slog.Logger) events.MigrationFailed {
	f := events.MigrationFailed{Error: cause.Error()}
	var step *StepError
	if errors.As(cause, &step) {
		f.File, f.Error = step.File, step.Err.Error()
	}
	log.Info("restoring the snapshot after a failed migration", "file", f.File, "snapshot", snap.ID)
	if _, err := db.Restore(ctx, snap.ID); err != nil {
		v, dirty, verr := db.Version(ctx)
		f.Version = v
		f.State = fmt.Sprintf("%s; restoring snapshot %s failed: %v; stop the service and restore %s by hand",
			describe(v, dirty, verr), snap.ID, err, snap.Location)
		return f
	}
	v, dirty, err := db.Version(ctx)
	f.Version = v
	if err != nil || dirty || v != snap.Version {
		f.State = fmt.Sprintf("%s after restoring snapshot %s, which holds version %d; check the database and restore %s by hand",
			describe(v, dirty, err), snap.ID, snap.Version, snap.Location)
		return f
	}
	f.State = fmt.Sprintf("clean at version %d (restored from snapshot %s)", v, snap.ID)
	return f
}

// recoverDirty restores the newest clean snapshot of a dirty database, after
// keeping the dirty state as a snapshot of its own when it can.
func (m *Migrator) recoverDirty(ctx context.Context, db Database, log *slog.Logger) (Snapshot, error) {
	snaps, err := db.Snapshots(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("recover dirty database: %w", err)
	}
	for _, listed := range snaps {
		s, err := db.Inspect(ctx, listed.ID)
		if err != nil {
			log.Warn("skip snapshot for recovery", "snapshot", listed.ID, "err", err)
			continue
		}
		if s.Dirty {
			continue
		}
		m.keepCurrent(ctx, db, "recovery", log)
		restored, err := db.Restore(ctx, s.ID)
		if err != nil {
			return Snapshot{}, fmt.Errorf("recover dirty database from snapshot %s: %w", s.ID, err)
		}
		log.Warn("recovered dirty database from snapshot", "snapshot", restored.ID, "version", restored.Version, "taken", restored.Time)
		return restored, nil
	}
	return Snapshot{}, errors.New("recover dirty database: no clean snapshot of it exists; repair it by hand and force its version")
}

// replacedKeeper is implemented by databases whose Restore keeps the state
// it replaces as a snapshot of its own (PostgreSQL renames the replaced
// database instead of dropping it): keepCurrent then copies nothing.
type replacedKeeper interface {
	KeepsReplaced() bool
}

// keepCurrent snapshots the database before a restore replaces it, so the
// data written since the restored snapshot stays available. It is best
// effort: a database too broken to copy must still be restorable.
func (m *Migrator) keepCurrent(ctx context.Context, db Database, why string, log *slog.Logger) {
	if k, ok := db.(replacedKeeper); ok && k.KeepsReplaced() {
		log.Info("the restore keeps the current state as a snapshot of its own before the " + why)
		return
	}
	s, err := db.Snapshot(ctx)
	if err != nil {
		log.Warn("could not keep the current state before the "+why+"; restoring anyway", "err", err)
		return
	}
	log.Info("kept the current state before the "+why, "snapshot", s.ID, "version", s.Version, "dirty", s.Dirty)
}

// describe says what state a database is in.
func describe(v uint, dirty bool, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("in an unknown state (%v)", err)
	case dirty:
		return fmt.Sprintf("dirty at version %d", v)
	default:
		return fmt.Sprintf("clean at version %d", v)
	}
}
