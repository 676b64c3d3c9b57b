// Package sqlite is the migrator's driver for SQLite databases, in pure Go
// (modernc.org/sqlite, no cgo), with golang-migrate's database/sqlite driver
// and migrations read from a directory (source/file) named
// NNNN_title.up.sql and NNNN_title.down.sql.
//
// Snapshots are made with VACUUM INTO, a consistent copy even while the
// service writes, into a .cutover-snapshots directory next to the database:
// <dir>/.cutover-snapshots/<base>.snap-<UTC timestamp>. Each one is checked
// (it opens, PRAGMA quick_check is ok) before it counts. The migrator
// deletes snapshots only through retention (migrator Config.KeepSnapshots)
// or PruneSnapshots. Migrations also keep the ledger table
// cutover_migrations (package ledger).
//
// A Database holds no connection between calls: every call opens and closes
// its own, so a restore can replace the file with nothing of its own open.
// A restore replaces the file atomically (rename) after removing the -wal,
// -shm and -journal files, which belong to the replaced state. The service
// that uses the database must not write to it during a restore.
package sqlite
