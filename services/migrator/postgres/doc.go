// Package postgres is the migrator's driver for PostgreSQL databases, through
// github.com/jackc/pgx/v5 (database/sql) and golang-migrate's pgx/v5
// database driver, with migrations read from a directory (migrator.ReadSource).
//
// A database is named by URL: postgres://user[:password]@host:port/dbname.
// The driver also connects to the server's maintenance database ("postgres")
// to create, rename and drop databases, so the role needs CREATEDB and the
// right to terminate the database's sessions (owner of the databases plus
// pg_signal_backend, or superuser).
//
// Snapshots, chosen by Driver.Method:
//
//   - template (the fast path): CREATE DATABASE <db>_snap_<time> TEMPLATE
//     <db> STRATEGY FILE_COPY, a file-level copy on the same server.
//     PostgreSQL refuses it while any other session is connected to <db>,
//     so the driver sets ALLOW_CONNECTIONS false on <db>, terminates its
//     sessions (pg_terminate_backend), copies, and allows connections again:
//     the service's connections drop for the length of the copy. The copy
//     is labelled with a COMMENT (JSON: which database, when, version, and
//     each table's pg_stat_user_tables write counters, read once the other
//     sessions ended, for WrittenAfter).
//   - dump: pg_dump --format=custom into Driver.DumpDir, with a .json label
//     next to it (write counters read just before pg_dump's transaction
//     snapshot: pg_export_snapshot, pg_dump --snapshot). No exclusive access needed; slower (rows are serialised
//     and indexes rebuilt on restore), and the only choice when the
//     sessions cannot be terminated or the copy must leave the server.
//   - auto (default): template, falling back to dump when the template copy
//     is refused.
//
// Measured on the benchmark machine (see BenchmarkSnapshot), a template copy
// runs near the speed of copying the database's files, several times faster
// than pg_dump/pg_restore, which is why it is the default.
//
// A restore renames the database aside, under a snapshot name
// (<db>_snap_<time>), makes a new one under its name and owner from the
// snapshot (CREATE DATABASE TEMPLATE the copy, or pg_restore of the dump
// into a scratch database then renamed), labels the old one as a snapshot of
// the state it replaced (KeepsReplaced: dropping it would cost about a third
// of the copy, and the migrator would otherwise copy it beforehand), and
// checks the version. The snapshot stays. If making
// the new database fails, the old one is renamed back. What belongs to
// the database rather than to its contents is carried over before the new
// one accepts connections: owner, grants (datacl, a REVOKE CONNECT FROM
// PUBLIC included), settings (ALTER DATABASE ... SET, ALTER ROLE ... IN
// DATABASE ... SET), comment and connection limit.
//
// WrittenAfter subtracts the snapshot's counters from the counters now, and
// leaves out each later fenced run's own writes: a run records the counters
// at its start and, when it was fenced (fence connect or read-only: no other
// role could write) and succeeded, at its mark (MarkRun, once the migrator's
// other sessions, application_name cutover-migrator, ended and so published
// theirs), in <snapshot>.run next to the dumps (package runmarks). An
// unfenced run is not marked: its writes count with the applications'.
//
// If the migrator dies between refusing connections and allowing them again
// the database keeps refusing connections: ALTER DATABASE <db>
// ALLOW_CONNECTIONS true repairs it.
package postgres
