// Package migrator applies database migrations on request, after a verified
// snapshot, and takes databases back down.
//
// A Migrator runs one durable JetStream consumer ("migrator") on
// cutover.migration.cmd and answers on cutover.migration.status:
//
//   - dev.cutover.migration.requested: lock the database (KV bucket
//     cutover-locks), refuse a dirty database unless the request says recover,
//     snapshot it and verify the snapshot, publish migration.started, migrate
//     up to the target and publish migration.completed. When a migration fails
//     midway, undo the run: when the failed file rolled back (StepError.
//     RolledBack: PostgreSQL and SQLite run each file in one transaction,
//     unless it controls transactions itself or runs CREATE INDEX
//     CONCURRENTLY, see Transactional) and every version applied in this run
//     has a down file, mark the version before it clean (Database.Force) and
//     migrate down to the pre-upgrade version: state "clean at version N
//     (down migrations)"; otherwise, or when that fails, restore the
//     snapshot: "clean at version N (restored from snapshot <id>)" - but
//     only when no write committed after the snapshot is counted
//     (Database.WrittenAfter: inserts, updates and deletes per table, the
//     failed run's own included, since it has no mark). When writes are
//     counted (or cannot be),
//     nothing is restored unless the request says restore_anyway: the
//     database is kept clean at the last version applied when the failed
//     file rolled back ("clean at version N, kept: not restored from
//     snapshot <id> because ..."), or left dirty, paused, when it did not.
//     Then publish migration.failed naming the file, the database error,
//     that state, the snapshot (restore: id, version, time, the writes per
//     table, restored or not) and the choices.
//     The run is recorded in the database's ledger (Database.RecordRun)
//     after its snapshot and until it ends clean: recover (a request with
//     recover, for a dirty database) restores that run's snapshot and no
//     other, after the same count, and refuses, saying what it found, when
//     no run is recorded.
//   - dev.cutover.migration.rollback.requested: refuse a source that fails
//     CheckSource's checks (applied file missing or changed, file below
//     the current version never applied) before anything runs; refuse to
//     undo a contract migration unless the request names the snapshot to
//     restore (its down file cannot bring back what it removed); go down
//     through the down migrations when every step has one, otherwise restore
//     the named snapshot, after counting what was written since it
//     (Database.WrittenAfter: by applications, each fenced run of the
//     migrator since it left out from its start to its mark,
//     Database.MarkRun, taken when it succeeded; an unfenced run takes no
//     mark and its writes are counted, flagged migration_writes_included,
//     since applications may have written while it ran), which the event reports (restore: the writes per
//     table; rows_written_after_snapshot: their sum): a rollback is an
//     explicit request, so it restores and reports; publish
//     migration.rollback.completed (or migration.failed).
//
// Each request is handled once: the consume helper records handled event ids
// in the cutover-processed bucket, and the outcome of a request is kept there
// too, so a redelivery after a crash republishes it instead of migrating again.
//
// Databases are reached through the Driver and Database interfaces declared
// here; the sqlite, postgres and mysql (MariaDB/MySQL) subpackages
// implement them (nothing above the interfaces is SQL-specific except the
// portable ledger package). Drivers are wired by main (Config.Drivers; the
// mysql driver under the names "mysql" and "mariadb"). The tests that range
// over every driver (integration_test.go, targets()) are their conformance
// suite, run on real SQLite, PostgreSQL and MariaDB.
//
// Files that cannot run in the transaction golang-migrate gives each file
// (PostgreSQL: CREATE INDEX CONCURRENTLY beside other statements; SQLite: a
// file with its own BEGIN) fail at their first statement having changed
// nothing: the StepError says how to split the file or which option to set,
// and is RolledBack, so nothing is restored. The drivers honour
// golang-migrate's options in the location: x-multi-statement=true in a
// PostgreSQL URL, ?x-no-tx-wrap=true after a SQLite path (internal/apply.
// Options).
//
// Migration sources are directories of golang-migrate files
// (NNNN_title.up.sql / NNNN_title.down.sql), or "image:<ref>[#/dir]": the
// directory (default /migrations) read out of an image through its registry
// (Config.Images, the image subpackage) into a temporary directory.
//
// Expand/contract: a migration is marked by its file name,
// NNNN_title.expand.up.sql or NNNN_title.contract.up.sql (golang-migrate
// reads the marker as part of the title, so the files stay valid for it).
// A request with phase expand applies the unmarked and expand migrations
// after the current version and stops before the first contract migration;
// phase contract (run once every instance runs the new version) applies the
// rest up to the target; phase all (default) applies everything.
//
// Before anything runs (no lock is left, no snapshot taken), CheckSource
// refuses what golang-migrate would silently get wrong: an applied file
// missing or changed since it was applied (SHA-256 kept in the database's own
// table cutover_migrations, see package ledger), a file at or below the
// current version that was never applied, and, with Config.RequireDown, a
// migration without a down file; ReadSource refuses two files with one
// version. Versions are golang-migrate's: gaps are normal (a migration steps
// to the next existing version) and version 0 is a version.
//
// Snapshots are managed: Config.KeepSnapshots keeps the N newest per
// database (default 3) after each successful migration, and removes the partial files
// an interrupted snapshot or restore left (SweepLeftovers); ListSnapshots,
// PruneSnapshots and SweepLeftovers serve `cutover snapshots list|prune`.
//
// What runs where: the migrator runs where it can reach the databases (for
// SQLite, on the host that holds the file). Several migrators may run: the
// per-database lock lets one of them work on a database at a time.
package migrator
