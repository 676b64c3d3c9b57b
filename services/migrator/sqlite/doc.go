// Package sqlite is the migrator's driver for SQLite databases, in pure Go
// (modernc.org/sqlite, no cgo), with golang-migrate's database/sqlite driver
// and migrations read from a directory (source/file) named
// NNNN_title.up.sql and NNNN_title.down.sql.
//
// Snapshots go into a .cutover-snapshots directory next to the database:
// <dir>/.cutover-snapshots/<base>.snap-<UTC timestamp>. The fast path copies
// the file in the kernel while holding the database's write lock (BEGIN
// IMMEDIATE), in WAL mode once a passive checkpoint moved every WAL frame
// into the file; the service's writers wait for the copy, its readers do
// not. When a reader keeps frames in the WAL, the copy goes through SQLite's
// online backup API instead (one read transaction, WAL frames included).
// Each copy is checked (it opens, PRAGMA quick_check is ok, read through
// mmap) while it is synced and hashed, before it counts; its CRC32C and size
// go into a side file, <snapshot>.crc32c. A restore hashes the snapshot while
// copying it and puts the copy in place only if it matches (a snapshot
// without a side file, taken before checksums, is checked with PRAGMA
// quick_check first), and keeps the file it replaces as a snapshot (a hard
// link, after a checkpoint of its WAL). WrittenAfter counts the rows
// inserted, updated and deleted after a snapshot (the database compared
// with the snapshot, ATTACHed), a marked run's own writes left out: a run
// given a mark leaves a copy of the file at its end (MarkRun,
// <snapshot>.mark) and a record (<snapshot>.run, package runmarks), and the
// comparison stops at the run's snapshot and starts again from that copy.
// SQLite cannot fence other writers, so the migrator marks no SQLite run:
// its writes count with the applications' (migration_writes_included). The migrator
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
