package migrator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Driver opens databases of one kind (sqlite, postgres, ...).
type Driver interface {
	// Open returns a handle on the database at location (a file path, a URL)
	// with migrations read from the directory source ("" when the caller only
	// restores snapshots). It fails when the database does not exist: the
	// migrator never creates one.
	Open(ctx context.Context, location, source string) (Database, error)
}

// Database is one database opened by a Driver. Its methods are called by one
// goroutine at a time, under the migrator's per-database lock.
type Database interface {
	// Key identifies the database for the per-database lock: two handles on
	// the same database return the same key, credentials excluded.
	Key() string
	// Version returns the applied migration version (0 when none) and whether
	// the last migration stopped midway (dirty).
	Version(ctx context.Context) (version uint, dirty bool, err error)
	// Migrations lists the migrations of the source, by ascending version.
	Migrations(ctx context.Context) ([]Migration, error)
	// Up applies the up migrations after the current version, one at a time,
	// until target (a version of the source). A failed migration returns a
	// *StepError and leaves the database dirty.
	Up(ctx context.Context, target uint) error
	// Down applies the down migrations from the current version, one at a
	// time, until target (0: before the first migration). A failed migration
	// returns a *StepError and leaves the database dirty.
	Down(ctx context.Context, target uint) error
	// Force records version (0: none, or version 0 when the ledger lists it as applied) as the database's clean version
	// without running anything, like golang-migrate's force. The migrator
	// calls it only after a failed file that the database rolled back
	// (StepError.RolledBack), whose schema is that of the version before.
	Force(ctx context.Context, version uint) error
	// Applied returns the database's ledger by ascending version: the up
	// files applied through Up, with their checksums. Up keeps it: it records
	// each applied file, and on a database with a version but no ledger yet
	// (migrated before cutover) it first adopts the source's files up to that
	// version as they are. Down removes the rows of the versions it undoes. A
	// database without the table returns nil.
	Applied(ctx context.Context) ([]Applied, error)
	// Snapshot copies the database into a new snapshot, checks the copy and
	// returns it with its version.
	Snapshot(ctx context.Context) (Snapshot, error)
	// Snapshots lists the database's snapshots, newest first. Only ID, Time
	// and Location are set: Inspect checks one.
	Snapshots(ctx context.Context) ([]Snapshot, error)
	// Inspect checks the snapshot id and returns it with its version. It
	// returns an error wrapping ErrSnapshotNotFound when there is none.
	Inspect(ctx context.Context, id string) (Snapshot, error)
	// Restore replaces the database with the snapshot id, after checking it,
	// and returns the snapshot.
	Restore(ctx context.Context, id string) (Snapshot, error)
	// WrittenAfter counts what the database holds that was written after
	// snapshot id, as far as it can be counted (see Loss): what a restore of
	// id takes out. The migrator calls it just before such a restore.
	WrittenAfter(ctx context.Context, id string) (Loss, error)
	// DropSnapshot deletes the snapshot id. It returns an error wrapping
	// ErrSnapshotNotFound when there is none.
	DropSnapshot(ctx context.Context, id string) error
	// Close releases the handle.
	Close() error
}

// Migration is one version of a migration source.
type Migration struct {
	// Version is the migration's number (0 is one too; gaps are normal).
	Version uint
	// Name is the title part of its file names.
	Name string
	// Up is the file name of the up migration, or "".
	Up string
	// Down is the file name of the down migration, or "" when there is none.
	Down string
	// Phase is PhaseExpand or PhaseContract when the up file's name carries
	// the marker (NNNN_title.expand.up.sql, NNNN_title.contract.up.sql), ""
	// when it carries none; see the package documentation.
	Phase string
	// SHA256 is the hex SHA-256 of the up file's content, recorded in the
	// database's cutover_migrations table when the file is applied.
	SHA256 string
}

// Applied is one row of a database's ledger (table cutover_migrations): an up
// file that the migrator applied, and its checksum at that time.
type Applied struct {
	// Version is the migration's version.
	Version uint
	// File is the up file applied.
	File string
	// SHA256 is the hex SHA-256 of the file when it was applied.
	SHA256 string
	// AppliedAt is when it was applied (or adopted: see Database.Applied).
	AppliedAt time.Time
}

// Snapshot is a copy of a database taken before it was changed.
type Snapshot struct {
	// ID names the snapshot in events and requests.
	ID string
	// Time is when the snapshot was taken.
	Time time.Time
	// Location is where the snapshot is kept (a file path for SQLite), for
	// an operator who has to restore it by hand.
	Location string
	// Version is the migration version the snapshot holds.
	Version uint
	// Dirty reports whether the database was dirty when it was taken.
	Dirty bool
}

// Loss is what a database holds that was written after one of its
// snapshots, as far as it can be counted without a log of the writes.
type Loss struct {
	// Rows counts, in the Counted tables, the rows whose integer key is
	// above the largest key of the same table in the snapshot (inserted
	// after it: SQLite rowids, PostgreSQL single-column smallint, integer or
	// bigint primary keys) plus, on PostgreSQL, the other rows whose
	// updated_at column (timestamp or timestamptz) is later than the
	// snapshot's time. Deletes, and updates in tables without updated_at,
	// are not seen.
	Rows int64
	// Counted lists the tables counted (schema.table on PostgreSQL): those
	// in both the database and the snapshot, with such a key.
	Counted []string
	// Uncounted lists the other tables of the database (migration
	// bookkeeping tables aside): without such a key, or not in the snapshot
	// (created after it, e.g. by a migration).
	Uncounted []string
}

// ErrSnapshotNotFound is wrapped by Database.Inspect and Database.Restore when
// the named snapshot does not exist.
var ErrSnapshotNotFound = errors.New("snapshot not found")

// StepError is returned by Database.Up and Database.Down when one migration
// file fails.
type StepError struct {
	// Version is the version of the migration that failed.
	Version uint
	// File is the migration file that failed, e.g. 0003_add_orders.up.sql.
	File string
	// Err is the database's error.
	Err error
	// RolledBack reports that the database undid the failed file entirely
	// (it ran in one transaction and controlled none itself; see
	// Transactional), so the schema and data are those of the version before
	// it, although the version table says dirty at Version.
	RolledBack bool
}

// Error says which file failed and the database's error.
func (e *StepError) Error() string { return fmt.Sprintf("migration %s failed: %v", e.File, e.Err) }

// Unwrap returns the database's error.
func (e *StepError) Unwrap() error { return e.Err }
