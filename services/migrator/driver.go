package migrator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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
	// WrittenAfter counts the writes committed to the database after
	// snapshot id by applications, per table (inserts, updates, deletes; see
	// Loss): what a restore of id takes out. The writes of the migrator's
	// own runs since id (from each run's start to its mark, see MarkRun) are
	// left out; those of a run without a mark are not (Loss.OwnIncluded).
	// The migrator calls it before any restore and does not restore, by
	// default, when it counts any.
	WrittenAfter(ctx context.Context, id string) (Loss, error)
	// MarkRun takes the mark of the run in progress (recorded by
	// RecordRun), which succeeded: it records, in the database's ledger, the
	// state WrittenAfter counts the writes after the run against, so that
	// the run's own writes are not counted as a restore's loss. Every write
	// from the run's start to its mark counts as the run's, so the migrator
	// calls it, before RecordRun(nil), only for a run whose fence kept every
	// other writer out (see fencer); any other run stays unmarked and is
	// counted whole.
	MarkRun(ctx context.Context) error
	// RecordRun notes in the database's own ledger that a run starts from
	// the snapshot run.Snapshot, or, with run nil, that the last run ended
	// with the database clean. The migrator calls it after the snapshot,
	// before the first file, so a snapshot never holds its own run's row.
	RecordRun(ctx context.Context, run *Run) error
	// LastRun returns the run recorded and not ended (nil when none): the
	// run that left a dirty database dirty, whose snapshot recover restores.
	LastRun(ctx context.Context) (*Run, error)
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

// Loss counts the writes committed to a database by applications after one
// of its snapshots: what a restore of the snapshot takes out.
//
// The writes of each marked run of the migrator after the snapshot, from its
// start (RecordRun) to its mark (MarkRun, taken only when a fenced run
// succeeded: no other writer could write meanwhile), are its own and are
// not counted. What is counted is the writes before the first marked run,
// between them and after the last one's mark. A run without a mark (not
// fenced, a command or down run, or one that failed or died midway) cannot
// be told from the applications: its writes are counted with theirs, and
// OwnIncluded says so.
type Loss struct {
	// Rows is the sum of every table's inserts, updates and deletes.
	Rows int64
	// Tables counts the writes per table, tables without writes left out.
	// PostgreSQL reads them from pg_stat_user_tables (n_tup_ins, n_tup_upd,
	// n_tup_del) recorded with the snapshot, at each run's start and mark,
	// and now: rolled-back inserts count too, and a backend publishes its
	// counters up to about a second after its transaction (longer while it
	// stays busy). SQLite and MariaDB compare, row by row, the snapshot (or
	// the copy taken at a run's mark) with the database (or the next run's
	// snapshot): rowid or primary key, every column for WITHOUT ROWID
	// tables, where an update counts as a delete and an insert.
	Tables []TableWrites
	// OwnIncluded reports that the counts include the writes of a run of
	// the migrator after the snapshot, with the applications': one without
	// a mark (not fenced, or it failed or stopped midway), or whose mark
	// could not be used.
	OwnIncluded bool
	// Counted lists the tables counted (schema.table on PostgreSQL).
	Counted []string
	// Uncounted lists the tables that could not be counted, migration
	// bookkeeping tables aside; an empty list means every table was.
	Uncounted []string
}

// TableWrites counts the rows of one table written after a snapshot.
type TableWrites struct {
	Table                     string
	Inserts, Updates, Deletes int64
}

// Run is a migration run recorded in the database's ledger (RecordRun).
type Run struct {
	// ID is the request that started it.
	ID string
	// Snapshot is the snapshot taken just before it.
	Snapshot string
	// From and Target are the versions it went from and to.
	From, Target uint
	// Started is when it started.
	Started time.Time
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

// Plus returns the writes of l and o together: counts summed per table, the
// counted and uncounted tables merged (a table uncounted in either stays
// uncounted).
func (l Loss) Plus(o Loss) Loss {
	out := Loss{Rows: l.Rows + o.Rows, OwnIncluded: l.OwnIncluded || o.OwnIncluded}
	byTable := map[string]TableWrites{}
	for _, w := range append(slices.Clone(l.Tables), o.Tables...) {
		s := byTable[w.Table]
		s.Table = w.Table
		s.Inserts, s.Updates, s.Deletes = s.Inserts+w.Inserts, s.Updates+w.Updates, s.Deletes+w.Deletes
		byTable[w.Table] = s
	}
	for _, name := range slices.Sorted(maps.Keys(byTable)) {
		out.Tables = append(out.Tables, byTable[name])
	}
	uncounted := map[string]bool{}
	for _, t := range append(slices.Clone(l.Uncounted), o.Uncounted...) {
		uncounted[t] = true
	}
	counted := map[string]bool{}
	for _, t := range append(slices.Clone(l.Counted), o.Counted...) {
		if !uncounted[t] {
			counted[t] = true
		}
	}
	out.Counted = slices.Sorted(maps.Keys(counted))
	out.Uncounted = slices.Sorted(maps.Keys(uncounted))
	return out
}
