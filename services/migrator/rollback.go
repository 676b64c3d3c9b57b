package migrator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cutover-dev/cutover/events"
)

// Rollback paths reported in migration.rollback.completed.
const (
	PathDown     = "down"
	PathSnapshot = "snapshot"
)

// rollback handles a rollback request: down migrations when every step has
// one, else the named snapshot, which is not restored when writes committed
// after it are counted (or cannot be counted) unless the request says
// restore_anyway: it is refused with the counts. It answers with migration.rollback.completed
// or migration.failed.
func (m *Migrator) rollback(ctx context.Context, e events.Event, req events.MigrationRollbackRequested) error {
	database := redact(req.Database)
	log := m.log.With("request", e.ID(), "upgrade", events.UpgradeID(e), "database", database, "rollback_to", req.ToVersion)
	failed, fail := m.failures(ctx, e, database, "roll back", "rollback failed", log)
	untouched := "unchanged: the migrator did not touch the database"

	db, release, refused, err := m.prepare(ctx, req.Driver, req.Source, req.Database, database, e.ID(), log)
	if refused != nil {
		return fail(events.MigrationFailed{Error: refused.Error(), State: untouched})
	}
	if err != nil {
		return err
	}
	defer release()

	from, dirty, err := db.Version(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), State: "unknown: the migrator could not read the version; check the database"})
	}
	unchanged := describe(from, dirty, nil) + ", unchanged"
	// A request naming a snapshot and no source asks for that restore: a
	// database migrated by commands keeps golang-migrate's version (none)
	// through its migrations, so an equal version says nothing there.
	explicit := req.Source == "" && req.SnapshotID != ""
	if !dirty && from == req.ToVersion && !explicit {
		log.Info("database already at the rollback target")
		return m.finish(ctx, e, events.MigrationRollbackCompleted{Database: database, Path: PathDown, FromVersion: from, ToVersion: from}, log)
	}
	if !dirty && from < req.ToVersion {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("database is at version %d, below the rollback target %d: nothing to roll back", from, req.ToVersion), Version: from, State: unchanged})
	}

	if err := m.checkRollbackSource(ctx, db, req, from, dirty); err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: unchanged + " (nothing ran)"})
	}
	why := m.downBlocked(ctx, db, req, from, dirty)
	if contracts := contractsUndone(ctx, db, req, from, dirty); len(contracts) > 0 {
		if req.SnapshotID == "" {
			return fail(events.MigrationFailed{Error: fmt.Sprintf("refused: rolling back to version %d undoes contract migration %s, which ran once every instance was on the new release "+
				"and removed what the old release needs; a down file cannot bring that data back. Restore the snapshot taken before the contract instead: "+
				"send the request again with its snapshot_id (the contract's migration.started names it)", req.ToVersion, strings.Join(contracts, ", ")),
				Version: from, State: unchanged + " (nothing ran)"})
		}
		why = fmt.Sprintf("it undoes contract migration %s, which only a snapshot restore can", strings.Join(contracts, ", "))
	}
	if why == "" {
		return m.rollbackDown(ctx, e, db, database, from, req.ToVersion, req.RestoreAnyway, fail, failed)
	}
	log.Info("rolling back through the snapshot", "reason", why)
	if req.SnapshotID == "" {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("cannot roll back to version %d: %s, and the request names no snapshot_id", req.ToVersion, why), Version: from, State: unchanged})
	}
	snap, err := db.Inspect(ctx, req.SnapshotID)
	if err != nil {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("cannot roll back to version %d: %s, and %v", req.ToVersion, why, err), Version: from, State: unchanged})
	}
	if snap.Dirty || snap.Version != req.ToVersion {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("snapshot %s holds version %d (dirty %v), not version %d; name the snapshot taken at version %d",
			snap.ID, snap.Version, snap.Dirty, req.ToVersion, req.ToVersion), Version: from, State: unchanged})
	}
	runCtx := context.WithoutCancel(ctx)
	loss, lerr := db.WrittenAfter(runCtx, snap.ID)
	if (lerr != nil || loss.Rows > 0) && !req.RestoreAnyway {
		// Writes committed after the snapshot (or writes that could not be
		// counted) would be lost: refused with the counts unless asked.
		info := restoreInfo(snap, loss, lerr)
		f := events.MigrationFailed{Version: from, State: unchanged + " (nothing restored)", Restore: info,
			Error: fmt.Sprintf("refused: not restoring snapshot %s (version %d) because %s", snap.ID, snap.Version, info.Lost),
			Choices: []string{
				fmt.Sprintf("restore anyway (the writes counted are lost; the current state is kept as a snapshot): the same migration.rollback.requested with restore_anyway (cutover db rollback --to %d --snapshot %s --restore-anyway)", req.ToVersion, snap.ID),
				"keep: the database stays as it is, with every write; roll forward instead (fix the release and migrate again)",
			}}
		return fail(f)
	}
	if lerr != nil {
		log.Warn("could not count what was written after the snapshot; restoring anyway as asked", "snapshot", snap.ID, "err", lerr)
	}
	m.keepCurrent(runCtx, db, "rollback", log)
	if _, err := db.Restore(runCtx, snap.ID); err != nil {
		v, d, verr := db.Version(runCtx)
		return failed(events.MigrationFailed{Error: err.Error(), Version: v,
			State: fmt.Sprintf("%s; restore %s by hand", describe(v, d, verr), snap.Location)})
	}
	to, d, err := db.Version(runCtx)
	if err != nil || d || to != req.ToVersion {
		return failed(events.MigrationFailed{Error: fmt.Sprintf("after restoring snapshot %s the database is %s, want clean at version %d", snap.ID, describe(to, d, err), req.ToVersion),
			Version: to, State: describe(to, d, err)})
	}
	t := snap.Time.UTC()
	done := events.MigrationRollbackCompleted{Database: database, Path: PathSnapshot, FromVersion: from, ToVersion: to, SnapshotTime: &t,
		Restore: restoreInfo(snap, loss, lerr)}
	done.Restore.Restored = true
	if lerr == nil {
		done.CountedTables, done.UncountedTables = loss.Counted, loss.Uncounted
		if len(loss.Counted) > 0 {
			done.RowsWrittenAfterSnapshot = &loss.Rows
		}
	}
	log.Info("rolled back through the snapshot; data written after it is not in the database", "snapshot", snap.ID, "taken", t,
		"rows_written_after", loss.Rows, "counted_tables", len(loss.Counted), "uncounted_tables", loss.Uncounted)
	return m.finish(ctx, e, done, log)
}

// checkRollbackSource runs CheckSource's checks on the source of a rollback
// request before anything runs: a gap, an applied file missing or changed
// since it was applied, or a file at or below the current version that was
// never applied all mean the down files may not undo what the database
// holds. A missing down file is not refused here: the rollback goes through
// the snapshot instead (downBlocked). A dirty database, or a request without
// a source, does not use the down files, and is not checked.
func (m *Migrator) checkRollbackSource(ctx context.Context, db Database, req events.MigrationRollbackRequested, from uint, dirty bool) error {
	if dirty || req.Source == "" {
		return nil
	}
	migs, err := db.Migrations(ctx)
	if err != nil {
		return nil // downBlocked reports it
	}
	applied, err := db.Applied(ctx)
	if err != nil {
		return fmt.Errorf("read the applied migrations: %w", err)
	}
	if err := CheckSource(migs, from, from, applied, false); err != nil {
		return fmt.Errorf("refused source %s: %w; fix the source, or send the rollback without a source to restore the snapshot named by snapshot_id", req.Source, err)
	}
	return nil
}

// downBlocked says why the down migrations cannot take the database from
// version from to the request's target, or "" when they can.
func (m *Migrator) downBlocked(ctx context.Context, db Database, req events.MigrationRollbackRequested, from uint, dirty bool) string {
	if dirty {
		return fmt.Sprintf("the database is dirty at version %d", from)
	}
	if req.Source == "" {
		return "the request names no migration source"
	}
	migs, err := db.Migrations(ctx)
	if err != nil {
		return err.Error()
	}
	known := map[uint]bool{}
	var missing []string
	for _, mg := range migs {
		known[mg.Version] = true
		if mg.Version > req.ToVersion && mg.Version <= from && mg.Down == "" {
			missing = append(missing, downName(mg))
		}
	}
	switch {
	case !known[from]:
		return fmt.Sprintf("source %s has no migration %d, the database's version", req.Source, from)
	case req.ToVersion != 0 && !known[req.ToVersion]:
		return fmt.Sprintf("source %s has no migration %d, the rollback target", req.Source, req.ToVersion)
	case len(missing) > 0:
		return fmt.Sprintf("source %s has no down migration for %s", req.Source, strings.Join(missing, ", "))
	}
	return ""
}

// rollbackDown runs the down migrations after a snapshot; a failed step
// restores the snapshot (restoreAfter: not when writes after it were
// counted, unless anyway).
func (m *Migrator) rollbackDown(ctx context.Context, e events.Event, db Database, database string, from, target uint, anyway bool,
	fail, failed func(events.MigrationFailed) error) error {
	log := m.log.With("request", e.ID(), "upgrade", events.UpgradeID(e), "database", database, "rollback_to", target)
	clean := fmt.Sprintf("clean at version %d, unchanged", from)
	// Down migrations drop data; the snapshot keeps it, and undoes a failed step.
	snap, err := db.Snapshot(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean + " (no migration runs without a verified snapshot)"})
	}
	if err := db.RecordRun(ctx, &Run{ID: e.ID(), Snapshot: snap.ID, From: from, Target: target, Started: snap.Time}); err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: clean + " (no migration runs unrecorded; snapshot " + snap.ID + " was taken)"})
	}
	log.Info("snapshot taken; migrating down", "snapshot", snap.ID, "from", from)
	runCtx := context.WithoutCancel(ctx)
	if err := db.Down(runCtx, target); err != nil {
		return failed(m.restoreAfter(runCtx, db, snap, err, anyway, nil, log))
	}
	to, dirty, err := db.Version(runCtx)
	if err != nil || dirty || to != target {
		err = errors.Join(err, fmt.Errorf("after migrating down, the database is at version %d (dirty %v), want %d", to, dirty, target))
		return failed(m.restoreAfter(runCtx, db, snap, err, anyway, nil, log))
	}
	m.finishRun(runCtx, db, false, log)
	return m.finish(ctx, e, events.MigrationRollbackCompleted{Database: database, Path: PathDown, FromVersion: from, ToVersion: to}, log)
}

// contractsUndone lists the contract migrations (NNNN_title.contract.up.sql)
// a rollback from version from to the request's target would undo: a
// rollback past one is refused unless the request names a snapshot to
// restore (issue 17: after the contract, only a snapshot brings back what
// the old release needs).
func contractsUndone(ctx context.Context, db Database, req events.MigrationRollbackRequested, from uint, dirty bool) []string {
	if req.Source == "" {
		return nil
	}
	migs, err := db.Migrations(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, mg := range migs {
		if mg.Phase == PhaseContract && mg.Version > req.ToVersion && (mg.Version <= from || (dirty && mg.Version == from)) {
			out = append(out, mg.Up)
		}
	}
	return out
}
