package mysql

import (
	"context"
	"fmt"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// RecordRun records run in the ledger (nil: the last run ended clean).
func (d *Database) RecordRun(ctx context.Context, run *migrator.Run) error {
	db, err := d.conn(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if run != nil {
		err = ledger.StartRun(ctx, qmarks{db}, *run)
	} else {
		var exists bool
		if exists, err = tableExists(ctx, db, ledger.RunsTable); err == nil {
			err = ledger.EndRun(ctx, qmarks{db}, exists)
		}
	}
	if err != nil {
		return fmt.Errorf("ledger of %s: %w", d.key, err)
	}
	return nil
}

// LastRun returns the run recorded and not ended, nil when none.
func (d *Database) LastRun(ctx context.Context) (*migrator.Run, error) {
	db, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	exists, err := tableExists(ctx, db, ledger.RunsTable)
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", d.key, err)
	}
	r, err := ledger.LastRun(ctx, qmarks{db}, exists)
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", d.key, err)
	}
	return r, nil
}
