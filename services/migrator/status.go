package migrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/cutover-dev/cutover/events"
)

// status answers a status request (cutover db status|snapshots) with the
// database's version, ledger, pending files, recorded run and snapshots. It
// reads only, without the database's lock: a migration in progress shows as
// it is.
func (m *Migrator) status(ctx context.Context, e events.Event, req events.MigrationStatusRequested) error {
	database := redact(req.Database)
	log := m.log.With("request", e.ID(), "database", database)
	rep, err := m.readStatus(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("status of %s: interrupted by shutdown; the request will be redelivered: %w", database, err)
		}
		rep = events.MigrationStatusReported{Error: err.Error()}
	}
	rep.Database = database
	return m.finish(ctx, e, rep, log)
}

func (m *Migrator) readStatus(ctx context.Context, req events.MigrationStatusRequested) (events.MigrationStatusReported, error) {
	var rep events.MigrationStatusReported
	drv, err := m.driver(req.Driver)
	if err != nil {
		return rep, err
	}
	dir, cleanup, err := m.fetchSource(ctx, req.Source)
	if err != nil {
		return rep, err
	}
	defer cleanup()
	db, err := drv.Open(ctx, req.Database, dir)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if rep.Version, rep.Dirty, err = db.Version(ctx); err != nil {
		return rep, err
	}
	applied, err := db.Applied(ctx)
	if err != nil {
		return rep, err
	}
	rep.Applied = len(applied)
	if run, err := db.LastRun(ctx); err != nil {
		return rep, err
	} else if run != nil {
		rep.Run = &events.MigrationRun{ID: run.ID, SnapshotID: run.Snapshot, FromVersion: run.From, TargetVersion: run.Target, Started: run.Started.UTC()}
	}
	if req.Source != "" {
		migs, err := db.Migrations(ctx)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		} else if len(migs) > 0 {
			rep.Latest = migs[len(migs)-1].Version
			for _, mg := range migs {
				if mg.Version > rep.Version {
					rep.Pending = append(rep.Pending, mg.Up)
				}
			}
			if err := CheckSource(migs, rep.Version, rep.Latest, applied, m.cfg.RequireDown); err != nil {
				var joined interface{ Unwrap() []error }
				if errors.As(err, &joined) {
					for _, e := range joined.Unwrap() {
						rep.Problems = append(rep.Problems, e.Error())
					}
				} else {
					rep.Problems = append(rep.Problems, err.Error())
				}
			}
		}
	}
	snaps, err := db.Snapshots(ctx)
	if err != nil {
		return rep, err
	}
	rep.Snapshots = []events.SnapshotInfo{}
	for _, s := range snaps {
		if full, err := db.Inspect(ctx, s.ID); err == nil {
			s = full
		}
		rep.Snapshots = append(rep.Snapshots, events.SnapshotInfo{ID: s.ID, Version: s.Version, Dirty: s.Dirty, Taken: s.Time.UTC(), Location: s.Location})
	}
	return rep, nil
}
