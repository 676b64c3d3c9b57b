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
	var v int64
	var dirty bool
	err := db.QueryRowContext(ctx, `SELECT version, dirty FROM `+table+` LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if v < 0 {
		return 0, dirty, nil
	}
	return uint(v), dirty, nil
}
