// Package apply runs golang-migrate one file at a time for the drivers
// (sqlite/, postgres/), recording each committed file in our own ledger, so
// a failure names its file and the ledger never runs ahead of the database.
package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4/database"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// Stepper runs golang-migrate steps; *migrate.Migrate has it.
type Stepper interface {
	Steps(n int) error
}

// Steps applies steps in order, up or down, one file per golang-migrate step.
// A failed file is described by fail (the driver knows whether its database
// undid it). key names the database in errors.
func Steps(ctx context.Context, m Stepper, led ledger.Execer, steps []migrator.Migration, up bool, key string,
	fail func(step migrator.Migration, file string, err error) *migrator.StepError) error {
	n := 1
	if !up {
		n = -1
	}
	for _, step := range steps {
		name := step.Up
		if !up {
			name = step.Down
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate %s: stopped before %s, clean at the version before it: %w", key, name, err)
		}
		if err := m.Steps(n); err != nil {
			return fail(step, name, err)
		}
		// The step committed: a failure to record it leaves the ledger one
		// step behind, which the next run reports rather than hides.
		var err error
		if up {
			err = ledger.Record(context.WithoutCancel(ctx), led, step)
		} else {
			err = ledger.Remove(context.WithoutCancel(ctx), led, step.Version)
		}
		if err != nil {
			return fmt.Errorf("migrate %s: %s applied, but: %w", key, name, err)
		}
	}
	return nil
}

// SQLError returns the database's own error out of golang-migrate's wrapper,
// which also carries the whole migration text.
func SQLError(err error) error {
	var dbErr *database.Error
	if errors.As(err, &dbErr) && dbErr.OrigErr != nil {
		return dbErr.OrigErr
	}
	return err
}

// Version reads golang-migrate's version row from table, which the caller
// has found to exist. No row, or version -1 (golang-migrate's "none"), is
// version 0.
func Version(ctx context.Context, db *sql.DB, table string) (uint, bool, error) {
	v, dirty, err := State(ctx, db, table)
	if v < 0 {
		return 0, dirty, err
	}
	return uint(v), dirty, err
}

// State reads golang-migrate's version row from table, which the caller has
// found to exist, as golang-migrate sees it: -1 when nothing was applied (no
// row, or version -1), so that a set numbered from 0 tells "version 0
// applied" from "nothing applied".
func State(ctx context.Context, db *sql.DB, table string) (int64, bool, error) {
	var v int64
	var dirty bool
	err := db.QueryRowContext(ctx, `SELECT version, dirty FROM `+table+` LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, err
	}
	if v < 0 {
		return -1, dirty, nil
	}
	return v, dirty, nil
}

// Plan lists the steps that take a database from version from (none: nothing
// applied yet, which a set numbered from 0 needs to tell from version 0) to
// target, in the order they run: up, every migration after from up to
// target, as golang-migrate steps over the gaps between versions; down, the
// migrations above target down to from, newest first, each with a down file.
func Plan(migs []migrator.Migration, from uint, none bool, target uint, up bool) ([]migrator.Migration, error) {
	var steps []migrator.Migration
	for _, mg := range migs {
		if up && (mg.Version > from || (none && mg.Version == from)) && mg.Version <= target {
			steps = append(steps, mg)
		}
		if !up && mg.Version > target && mg.Version <= from && !none {
			if mg.Down == "" {
				return nil, fmt.Errorf("down to %d: migration %s has no down file", target, mg.Up)
			}
			steps = append([]migrator.Migration{mg}, steps...) // newest first
		}
	}
	return steps, nil
}
