package migrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// migrate handles a migration request. It answers with migration.completed
// or migration.failed and returns nil, except when the database is locked or
// the answer cannot be published: then the request is redelivered.
func (m *Migrator) migrate(ctx context.Context, e events.Event, req events.MigrationRequested) error {
	database := redact(req.Database)
	log := m.log.With("request", e.ID(), "upgrade", events.UpgradeID(e), "database", database)
	failed, fail := m.failures(ctx, e, database, "migrate", "migration failed", log)
	untouched := "unchanged: the migrator did not touch the database"

	switch req.Phase {
	case "", PhaseAll, PhaseExpand, PhaseContract:
	case PhaseMigrate:
		if req.Command == nil {
			return fail(events.MigrationFailed{Error: "phase migrate is a phase of command migrations; SQL file sets have expand and contract", State: untouched})
		}
	default:
		return fail(events.MigrationFailed{Error: fmt.Sprintf("phase %q is unknown; send expand, migrate, contract or all", req.Phase), State: untouched})
	}
	if req.Command != nil {
		if req.Fence != "" && req.Fence != "none" {
			return fail(events.MigrationFailed{Error: fmt.Sprintf("fence %q applies to SQL file migrations; a command migration is not fenced: leave fence out", req.Fence), State: untouched})
		}
		return m.migrateCommand(ctx, e, req, log, fail, failed)
	}
	r, err := m.beginRun(ctx, req, req.Source, database, e.ID(), log, fail)
	if r == nil {
		return err
	}
	defer r.release()
	db, from, dirty, started := r.db, r.from, r.dirty, r.started
	if dirty && !req.Recover {
		return fail(events.MigrationFailed{
			Error:   fmt.Sprintf("database is dirty at version %d: a migration stopped midway before this request", from),
			Version: from,
			State: fmt.Sprintf("dirty at version %d, unchanged; send the request again with recover (cutover db recover) to restore the snapshot taken by the run that left it dirty, "+
				"or repair the database by hand and set its version (golang-migrate force)", from),
		})
	}
	var recovered *events.SnapshotRestore
	if dirty {
		snap, info, refused := m.recoverDirty(ctx, db, from, req.RestoreAnyway, log)
		if refused != nil {
			refused.Database = database
			return fail(*refused)
		}
		from, recovered = snap.Version, info
	}
	clean := fmt.Sprintf("clean at version %d, unchanged", from)
	if recovered != nil {
		clean = fmt.Sprintf("clean at version %d (restored from snapshot %s)", from, recovered.SnapshotID)
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
		return m.finish(ctx, e, events.MigrationCompleted{Database: database, FromVersion: from, ToVersion: from, DurationMs: time.Since(started).Milliseconds(), Recovered: recovered}, log)
	}

	// fenced: the fence kept every other writer out for the whole run, so
	// the run's window holds its own writes alone and may be marked.
	fenced := false
	switch req.Fence {
	case "", "none":
	case "connect", "read-only":
		f, ok := db.(fencer)
		if !ok {
			return fail(events.MigrationFailed{Error: fmt.Sprintf("fence %q: this database's driver cannot fence writers; leave fence out", req.Fence), Version: from, State: clean})
		}
		unfence, err := f.Fence(ctx, req.Fence)
		if err != nil {
			return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean})
		}
		fenced = true
		since := time.Now()
		defer func() {
			err := unfence(context.WithoutCancel(ctx))
			log.Info("fence lifted", "fenced_ms", time.Since(since).Milliseconds(), "err", err)
		}()
	default:
		return fail(events.MigrationFailed{Error: fmt.Sprintf("fence %q is unknown; send connect, read-only or none", req.Fence), Version: from, State: untouched})
	}
	snap, err := db.Snapshot(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean + " (no migration runs without a verified snapshot)"})
	}
	// The run is recorded in the database's ledger, after the snapshot: if
	// it leaves the database dirty, recover restores this snapshot and no
	// other.
	if err := db.RecordRun(ctx, &Run{ID: e.ID(), Snapshot: snap.ID, From: from, Target: target, Started: snap.Time}); err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean + " (no migration runs unrecorded; snapshot " + snap.ID + " was taken)"})
	}
	log.Info("snapshot taken; migrating", "snapshot", snap.ID, "from", from, "to", target)
	if err := m.publish(ctx, e, events.MigrationStarted{Database: database, FromVersion: from, SnapshotID: snap.ID}); err != nil {
		return err
	}

	// Shutdown does not stop a migration midway: that would leave it dirty.
	runCtx := context.WithoutCancel(ctx)
	if err := db.Up(runCtx, target); err != nil {
		return failed(m.undoAfter(runCtx, db, migs, from, snap, err, req.RestoreAnyway, log))
	}
	to, dirty, err := db.Version(runCtx)
	if err != nil || dirty || to != target {
		err = errors.Join(err, fmt.Errorf("after migrating, the database is at version %d (dirty %v), want %d", to, dirty, target))
		return failed(m.restoreAfter(runCtx, db, snap, err, req.RestoreAnyway, nil, log))
	}
	m.finishRun(runCtx, db, fenced, log)
	m.prune(runCtx, db, log)
	return m.finish(ctx, e, events.MigrationCompleted{
		Database: database, FromVersion: from, ToVersion: to, SnapshotID: snap.ID,
		DurationMs: time.Since(started).Milliseconds(), Recovered: recovered,
	}, log)
}

// finishRun notes in the ledger that a run that succeeded ended with the
// database clean, after taking its mark (see Database.MarkRun) when
// exclusive: only when the run's fence kept every other writer out is the
// migrator sure that the writes from its start to its end are its own.
// Without a mark (an unfenced run, a command or down run), a rollback
// through the run's snapshot counts the run's writes with the
// applications' and says so: marking an unfenced run would count the
// applications' writes committed while it ran as the run's, and a later
// restore would drop them unreported.
func (m *Migrator) finishRun(ctx context.Context, db Database, exclusive bool, log *slog.Logger) {
	if exclusive {
		if err := db.MarkRun(ctx); err != nil {
			log.Warn("could not take the mark of the run; a restore of its snapshot will count its own writes as the applications'", "err", err)
		}
	}
	m.endRun(ctx, db, log)
}

// endRun notes in the ledger that the run ended with the database clean.
func (m *Migrator) endRun(ctx context.Context, db Database, log *slog.Logger) {
	if err := db.RecordRun(ctx, nil); err != nil {
		log.Warn("could not note the end of the run in the ledger; recover would name its snapshot", "err", err)
	}
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
// Otherwise, or when that fails, it restores the snapshot (restoreAfter:
// not when writes after it were counted).
// It describes the result as a migration.failed event.
func (m *Migrator) undoAfter(ctx context.Context, db Database, migs []Migration, from uint, snap Snapshot, cause error, anyway bool, log *slog.Logger) events.MigrationFailed {
	var step *StepError
	if !errors.As(cause, &step) || !step.RolledBack {
		return m.restoreAfter(ctx, db, snap, cause, anyway, nil, log)
	}
	// reached is the version whose schema the database holds now: the last
	// applied before the failed file.
	// A set numbered from 0 run from 0 may have applied version 0 in this
	// run or before it: a version of 0 says not which, so such a run is
	// undone through the snapshot (Force tells the two apart by the ledger).
	zeroRun := len(migs) > 0 && migs[0].Version == 0 && from == 0
	reached, noDown := from, ""
	for _, mg := range migs {
		if (mg.Version > from || (zeroRun && mg.Version == 0)) && mg.Version < step.Version {
			if mg.Down == "" && noDown == "" {
				noDown = mg.Up
			}
			reached = mg.Version
		}
	}
	if noDown != "" || zeroRun {
		log.Info("a migration applied in this run has no down file, or the set starts at 0; restoring the snapshot", "migration", noDown)
		return m.restoreAfter(ctx, db, snap, cause, anyway, &reached, log)
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
			m.endRun(ctx, db, log)
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
	f = m.restoreAfter(ctx, db, snap, cause, anyway, nil, log)
	f.State += fmt.Sprintf(" after migrating down failed: %v", err)
	return f
}

// restoreAfter puts the database back to its snapshot after a failed step
// and describes the result as a migration.failed event, with what the
// restore took out. When writes committed after the snapshot are counted
// (or cannot be counted) and anyway is false, it does not restore: with
// reached set (the failed file rolled back, leaving the schema of version
// *reached) it marks that version clean and keeps the database; otherwise
// the database stays dirty, paused. Either way the event carries the counts
// and the choices.
func (m *Migrator) restoreAfter(ctx context.Context, db Database, snap Snapshot, cause error, anyway bool, reached *uint, log *slog.Logger) events.MigrationFailed {
	f := events.MigrationFailed{Error: cause.Error()}
	var step *StepError
	if errors.As(cause, &step) {
		f.File, f.Error = step.File, step.Err.Error()
	}
	loss, lerr := db.WrittenAfter(ctx, snap.ID)
	info := restoreInfo(snap, loss, lerr)
	if (lerr != nil || loss.Rows > 0) && !anyway {
		f.Restore = info
		restoreAnyway := fmt.Sprintf("restore anyway (the writes counted are lost; the current state is kept as a snapshot): cutover db recover --restore-anyway, "+
			"or a migration.requested with recover and restore_anyway, restores snapshot %s (version %d)", snap.ID, snap.Version)
		if reached != nil {
			if err := db.Force(ctx, *reached); err == nil {
				if v, dirty, verr := db.Version(ctx); verr == nil && !dirty && v == *reached {
					m.endRun(ctx, db, log)
					f.Version = v
					f.State = fmt.Sprintf("clean at version %d, kept: not restored from snapshot %s because %s", v, snap.ID, info.Lost)
					f.Choices = []string{
						fmt.Sprintf("keep: nothing to do; the database holds every write and the migrations up to version %d (the failed file rolled back); fix the file and migrate again", v),
						fmt.Sprintf("restore anyway (the writes counted are lost): a migration.rollback.requested to version %d with snapshot_id %s and restore_anyway (cutover db rollback --to %d --snapshot %s --restore-anyway)", snap.Version, snap.ID, snap.Version, snap.ID),
					}
					log.Warn("writes after the snapshot: kept the database instead of restoring it", "snapshot", snap.ID, "version", v, "lost", info.Lost)
					return f
				}
			}
		}
		v, dirty, verr := db.Version(ctx)
		f.Version = v
		f.State = fmt.Sprintf("%s, paused: not restored from snapshot %s because %s", describe(v, dirty, verr), snap.ID, info.Lost)
		f.Choices = []string{
			restoreAnyway,
			"keep: repair the database by hand, then set the version it holds (golang-migrate force)",
		}
		log.Warn("writes after the snapshot: left the database paused instead of restoring it", "snapshot", snap.ID, "lost", info.Lost)
		return f
	}
	log.Info("restoring the snapshot after a failed migration", "file", f.File, "snapshot", snap.ID, "lost", info.Lost)
	if _, err := db.Restore(ctx, snap.ID); err != nil {
		v, dirty, verr := db.Version(ctx)
		f.Version = v
		f.Restore = info
		f.State = fmt.Sprintf("%s; restoring snapshot %s failed: %v; stop the service and restore %s by hand",
			describe(v, dirty, verr), snap.ID, err, snap.Location)
		return f
	}
	info.Restored = true
	f.Restore = info
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

// restoreInfo describes snap and what a restore of it takes out.
func restoreInfo(snap Snapshot, loss Loss, lerr error) *events.SnapshotRestore {
	r := &events.SnapshotRestore{SnapshotID: snap.ID, Version: snap.Version, Taken: snap.Time.UTC(), WritesCounted: lerr == nil}
	if lerr != nil {
		r.CountError = lerr.Error()
		r.Lost = fmt.Sprintf("the writes after snapshot %s (taken %s) could not be counted: %v", snap.ID, r.Taken.Format(time.RFC3339), lerr)
		return r
	}
	r.MigrationWritesIncluded = loss.OwnIncluded
	var parts []string
	for _, w := range loss.Tables {
		r.Writes = append(r.Writes, events.TableWrites{Table: w.Table, Inserts: w.Inserts, Updates: w.Updates, Deletes: w.Deletes})
		parts = append(parts, fmt.Sprintf("%s %d inserted, %d updated, %d deleted", w.Table, w.Inserts, w.Updates, w.Deletes))
	}
	uncounted := ""
	if len(loss.Uncounted) > 0 {
		uncounted = fmt.Sprintf("; tables not counted: %s", strings.Join(loss.Uncounted, ", "))
	}
	// What is counted: the applications' writes once the migrator's runs
	// after the snapshot finished, or, when one has no mark, every write
	// since the snapshot, that run's own included.
	what, since := "written by applications", fmt.Sprintf("after snapshot %s (taken %s, version %d), the migration's own writes left out", snap.ID, r.Taken.Format(time.RFC3339), snap.Version)
	if loss.OwnIncluded {
		what, since = "written", fmt.Sprintf("after snapshot %s (taken %s, version %d), the migration's own writes included: a run after the snapshot was not fenced "+
			"(other writers could write while it ran) or did not finish cleanly, so its writes cannot be told from the applications', and restoring anyway also loses whatever applications wrote; "+
			"to have a data migration rolled back without this, run it fenced (fence connect or read-only, PostgreSQL)",
			snap.ID, r.Taken.Format(time.RFC3339), snap.Version)
	}
	if loss.Rows == 0 {
		r.Lost = fmt.Sprintf("nothing counted: no row %s %s, in %d tables%s", what, since, len(loss.Counted), uncounted)
		return r
	}
	r.Lost = fmt.Sprintf("%d rows %s %s: %s%s", loss.Rows, what, since, strings.Join(parts, "; "), uncounted)
	return r
}

// recoverDirty restores the snapshot taken by the run that left the
// database dirty at version dirtyAt, as recorded in its ledger (RecordRun),
// after counting the writes since that snapshot: with writes counted and
// anyway false, or without a recorded run, it refuses (refused describes
// why, the counts and the choices) and changes nothing.
func (m *Migrator) recoverDirty(ctx context.Context, db Database, dirtyAt uint, anyway bool, log *slog.Logger) (Snapshot, *events.SnapshotRestore, *events.MigrationFailed) {
	unchanged := fmt.Sprintf("dirty at version %d, unchanged", dirtyAt)
	refuse := func(err error) (Snapshot, *events.SnapshotRestore, *events.MigrationFailed) {
		return Snapshot{}, nil, &events.MigrationFailed{Error: err.Error(), Version: dirtyAt, State: unchanged}
	}
	run, err := db.LastRun(ctx)
	if err != nil {
		return refuse(fmt.Errorf("recover dirty database: %w", err))
	}
	if run == nil {
		found := "no snapshot"
		if snaps, err := db.Snapshots(ctx); err == nil && len(snaps) > 0 {
			var ids []string
			for _, s := range snaps {
				ids = append(ids, s.ID)
			}
			found = "snapshots " + strings.Join(ids, ", ")
		}
		return refuse(fmt.Errorf("recover dirty database: its ledger records no migrator run that left it dirty at version %d (it was changed outside the migrator, or by a migrator before runs were recorded); "+
			"found %s, none of which is known to be its state before; repair it by hand and set its version (golang-migrate force), or roll back to a snapshot you choose (cutover db rollback --snapshot ID)", dirtyAt, found))
	}
	s, err := db.Inspect(ctx, run.Snapshot)
	if err != nil {
		return refuse(fmt.Errorf("recover dirty database: the run %s that left it dirty (from version %d to %d, started %s) took snapshot %s: %w; repair it by hand and set its version (golang-migrate force)",
			run.ID, run.From, run.Target, run.Started.UTC().Format(time.RFC3339), run.Snapshot, err))
	}
	loss, lerr := db.WrittenAfter(ctx, s.ID)
	info := restoreInfo(s, loss, lerr)
	if (lerr != nil || loss.Rows > 0) && !anyway {
		_, _, f := refuse(fmt.Errorf("recover dirty database: not restoring snapshot %s (version %d, taken by run %s) because %s", s.ID, s.Version, run.ID, info.Lost))
		f.Restore = info
		f.Choices = []string{
			fmt.Sprintf("restore anyway (the writes counted are lost; the dirty state is kept as a snapshot): cutover db recover --restore-anyway, or a migration.requested with recover and restore_anyway, restores snapshot %s", s.ID),
			"keep: repair the database by hand, then set the version it holds (golang-migrate force)",
		}
		return Snapshot{}, nil, f
	}
	m.keepCurrent(ctx, db, "recovery", log)
	restored, err := db.Restore(ctx, s.ID)
	if err != nil {
		return refuse(fmt.Errorf("recover dirty database from snapshot %s: %w", s.ID, err))
	}
	info.Restored = true
	log.Warn("recovered dirty database from the snapshot of the run that left it dirty", "snapshot", restored.ID, "version", restored.Version, "taken", restored.Time, "run", run.ID, "lost", info.Lost)
	return restored, info, nil
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

// snapshotMethoder is a Database with more than one snapshot method
// (PostgreSQL: auto, template, dump).
type snapshotMethoder interface {
	SetSnapshotMethod(method string) error
}

// setSnapshotMethod applies a request's snapshot_method to db.
func setSnapshotMethod(db Database, method string) error {
	if s, ok := db.(snapshotMethoder); ok {
		return s.SetSnapshotMethod(method)
	}
	if method == "auto" {
		return nil
	}
	return fmt.Errorf("snapshot_method %q: this database's driver has one snapshot method; leave snapshot_method out (or auto)", method)
}

// fencer is a Database that can stop other writers for a run (PostgreSQL:
// a request's fence "connect" or "read-only", the mode).
type fencer interface {
	Fence(ctx context.Context, mode string) (unfence func(context.Context) error, err error)
}
