// Package mysql is the migrator's driver for MariaDB and MySQL databases (the
// driver names "mysql" and "mariadb" both select it), through
// github.com/go-sql-driver/mysql and golang-migrate's mysql database driver,
// with migrations read from a directory (migrator.ReadSource). It is written
// and tested against MariaDB 10.11, the version Kolla ships.
//
// A database is named by URL: mysql://user[:password]@host:port/dbname
// (mariadb:// too; query parameters go to the Go driver, e.g. tls=true).
// The user needs, on the database and the scratch databases <db>_new_* and
// <db>_old_* a restore makes: ALL (the mark databases <db>_mark_* too only
// where MarkRun is called; the migrator marks no MariaDB run, see below);
// plus SHOW VIEW, TRIGGER and, for
// triggers whose definer is another user, SET USER (or SUPER).
//
// Locking: every Up, Down, Snapshot and Restore holds the server lock
// GET_LOCK('cutover.migrate.<db>') on a connection of its own, so two
// migrators (of different clusters) or an operator's tool taking the same
// lock never work on the database at once; a lock held longer than
// Driver.LockWait fails the call with an error wrapping
// migrator.ErrLockHeld. golang-migrate also takes its own GET_LOCK per step.
//
// Failed files: MySQL commits each DDL statement on its own, so a file of
// several statements that fails midway leaves the first ones applied: the
// driver reports it as rolled back (StepError.RolledBack) only when it holds
// one statement, and the migrator restores the snapshot otherwise.
//
// Snapshots: mariadb-dump --single-transaction into Driver.DumpDir (one
// consistent InnoDB read view; no table locks, so the service's writers go
// on), hashed as it is written, with a .json label (version, size,
// SHA-256). The password reaches the client programs
// through a --defaults-file readable by the migrator's user only, never on
// a command line. The database may hold tables and triggers; a snapshot of
// one with views, stored routines or events is refused with their names.
//
// Driver.Method (or a request's snapshot_method) "backup" snapshots
// physically instead, where the migrator runs on the server's machine with
// access to its data directory; the default, "auto", does so for a
// database above Driver.BackupAbove (512 MiB) where it can: the schema by mariadb-dump --no-data, the
// tables' files by mariadb-backup --backup --no-lock --databases (commits
// are not blocked) prepared with --export; a restore loads the schema into
// the scratch database and imports each table's files (DISCARD, copy,
// IMPORT TABLESPACE, which checks every page) before the same swap. About
// a file copy's time both ways at 1 GB (docs/benchmarks.md), where the dump
// is reloaded through the SQL layer. Every table must be InnoDB, not
// partitioned, without FULLTEXT indexes and named as its files; no DDL may
// run on the database during the snapshot (--no-lock).
//
// Restore keeps the database itself, and with it every grant that names it
// or its tables, its users and its options (character set, collation): the
// dump is loaded into a scratch database (the SHA-256 checked as it
// streams), then one atomic RENAME TABLE swaps the tables in; see
// Database.Restore.
//
// Writes after a snapshot (WrittenAfter, which the migrator reads before
// any restore): MariaDB keeps no per-table write counters by default, so the
// driver loads the snapshot into its scratch database <db>_new_<time> and
// compares it with the database, rows matched by primary key: inserts,
// deletes, and updates of the columns both sides have, per table. The
// writes of a marked run are left out (MariaDB cannot fence other writers,
// so the migrator marks no MariaDB run: its writes count with the
// applications', migration_writes_included): a marked run copies the
// tables at its end, on the server, into <db>_mark_<time of its snapshot>
// (MarkRun; the cost of an INSERT ... SELECT of every row, see
// docs/benchmarks.md) and leaves a record (<snapshot>.run in the dump
// directory, package runmarks); the comparison stops at the run's snapshot
// and starts again from that copy. A Restore that follows reuses that
// load; when the migrator decides not to restore (writes counted), the
// scratch database stays until the next sweep (SweepLeftovers, run after
// each successful migration and by cutover snapshots prune). Tables
// without a primary key are listed as uncounted.
package mysql
