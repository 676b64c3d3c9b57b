// Package ledger keeps the migrator's record of applied migration files in
// the migrated database itself: table cutover_migrations(version, file,
// sha256, applied_at). Because it lives in the database, a snapshot and its
// restore carry it, and it always matches golang-migrate's version.
//
// The SQL is portable across the database/sql drivers the migrator uses
// (SQLite, PostgreSQL): numbered placeholders, TEXT columns, applied_at as
// RFC 3339 UTC text. Driver subpackages call it around each migration step;
// the migrator reads it through Database.Applied.
package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
)

// Table is the ledger's table name.
const Table = "cutover_migrations"

// RunsTable records the run in progress: the snapshot taken before it, so
// that recovering a database a run left dirty restores that snapshot and no
// other. A run's row is written after its snapshot (which therefore never
// holds it) and the table dropped when the run ends clean.
const RunsTable = "cutover_runs"

// Execer is what the ledger needs of a connection: *sql.DB, *sql.Conn and
// *sql.Tx all fit.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Ensure creates the table when it does not exist.
func Ensure(ctx context.Context, db Execer) error {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
		version BIGINT PRIMARY KEY,
		file TEXT NOT NULL,
		sha256 TEXT NOT NULL,
		applied_at TEXT NOT NULL)`)
	if err != nil {
		return fmt.Errorf("create table %s: %w", Table, err)
	}
	return nil
}

// Read returns the ledger by ascending version; exists reports whether the
// table exists (tableExists is the driver's check for it).
func Read(ctx context.Context, db Execer, tableExists bool) ([]migrator.Applied, error) {
	if !tableExists {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT version, file, sha256, applied_at FROM `+Table+` ORDER BY version`)
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", Table, err)
	}
	defer rows.Close()
	var out []migrator.Applied
	for rows.Next() {
		var a migrator.Applied
		var v int64
		var at string
		if err := rows.Scan(&v, &a.File, &a.SHA256, &at); err != nil {
			return nil, fmt.Errorf("read table %s: %w", Table, err)
		}
		a.Version = uint(v)
		a.AppliedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read table %s: %w", Table, err)
	}
	return out, nil
}

// Record notes that mg was applied now, replacing any older row of its version.
func Record(ctx context.Context, db Execer, mg migrator.Migration) error {
	if err := Remove(ctx, db, mg.Version); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `INSERT INTO `+Table+` (version, file, sha256, applied_at) VALUES ($1, $2, $3, $4)`,
		int64(mg.Version), mg.Up, mg.SHA256, time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("record %s in table %s: %w", mg.Up, Table, err)
	}
	return nil
}

// Remove deletes the row of version (after its down migration ran).
func Remove(ctx context.Context, db Execer, version uint) error {
	if _, err := db.ExecContext(ctx, `DELETE FROM `+Table+` WHERE version = $1`, int64(version)); err != nil {
		return fmt.Errorf("remove version %d from table %s: %w", version, Table, err)
	}
	return nil
}

// Adopt records the source's migrations up to version current when the ledger
// is empty: a database migrated before cutover (or by golang-migrate alone)
// starts its ledger with the files as they are now.
func Adopt(ctx context.Context, db Execer, migs []migrator.Migration, current uint) error {
	have, err := Read(ctx, db, true)
	if err != nil || len(have) > 0 || current == 0 {
		return err
	}
	for _, mg := range migs {
		if mg.Version <= current {
			if err := Record(ctx, db, mg); err != nil {
				return err
			}
		}
	}
	return nil
}

// Has reports whether the ledger lists version; a database without the table
// lists none. Force uses it for version 0: golang-migrate's "version 0
// applied" (a set numbered from 0) differs from "nothing applied", and the
// ledger tells which.
func Has(ctx context.Context, db Execer, version uint) bool {
	rows, err := db.QueryContext(ctx, `SELECT 1 FROM `+Table+` WHERE version = $1`, int64(version))
	if err != nil {
		return false
	}
	defer rows.Close()
	return rows.Next()
}

// StartRun records run as the run in progress, replacing any other.
func StartRun(ctx context.Context, db Execer, run migrator.Run) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+RunsTable+` (
		id TEXT NOT NULL,
		snapshot TEXT NOT NULL,
		from_version BIGINT NOT NULL,
		target_version BIGINT NOT NULL,
		started_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create table %s: %w", RunsTable, err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM `+RunsTable); err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO `+RunsTable+` (id, snapshot, from_version, target_version, started_at) VALUES ($1, $2, $3, $4, $5)`,
		run.ID, run.Snapshot, int64(run.From), int64(run.Target), run.Started.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	return nil
}

// EndRun removes the run in progress, and its table: a database at rest
// holds no trace of it (tableExists: the driver's check).
func EndRun(ctx context.Context, db Execer, tableExists bool) error {
	if !tableExists {
		return nil
	}
	if _, err := db.ExecContext(ctx, `DROP TABLE `+RunsTable); err != nil {
		return fmt.Errorf("end run: %w", err)
	}
	return nil
}

// LastRun returns the run in progress, nil when none (tableExists: the
// driver's check).
func LastRun(ctx context.Context, db Execer, tableExists bool) (*migrator.Run, error) {
	if !tableExists {
		return nil, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT id, snapshot, from_version, target_version, started_at FROM `+RunsTable)
	if err != nil {
		return nil, fmt.Errorf("read table %s: %w", RunsTable, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	var r migrator.Run
	var from, target int64
	var at string
	if err := rows.Scan(&r.ID, &r.Snapshot, &from, &target, &at); err != nil {
		return nil, fmt.Errorf("read table %s: %w", RunsTable, err)
	}
	r.From, r.Target = uint(from), uint(target)
	r.Started, _ = time.Parse(time.RFC3339Nano, at)
	return &r, nil
}
