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
//     midway, restore the snapshot, check the version is back, and publish
//     migration.failed naming the file, the database error and the state the
//     database is left in.
//   - dev.cutover.migration.rollback.requested: go down through the down
//     migrations when every step has one, otherwise restore the named snapshot;
//     publish migration.rollback.completed (or migration.failed).
//
// Each request is handled once: the consume helper records handled event ids
// in the cutover-processed bucket, and the outcome of a request is kept there
// too, so a redelivery after a crash republishes it instead of migrating again.
//
// Databases are reached through the Driver and Database interfaces declared
// here; the sqlite subpackage implements them. Drivers are wired by main
// (Config.Drivers). PostgreSQL, migrations shipped inside images and the
// expand/contract phases come with issue 4.
//
// What runs where: the migrator runs where it can reach the databases (for
// SQLite, on the host that holds the file). Several migrators may run: the
// per-database lock lets one of them work on a database at a time.
package migrator
