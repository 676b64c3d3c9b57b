// Package postgres stores the auditor's history in PostgreSQL, for the
// distributed deployment (several auditors, or a history kept off the
// auditor's host).
//
// Store implements auditor.Store and auditor.History like the sqlite
// package, and passes the same conformance suite (auditor/storetest). Its
// schema (one table, cutover_events) is managed by golang-migrate with the
// pgx/v5 driver, in a migrations table of its own
// (cutover_auditor_schema_migrations), so it can share a database with
// other tools' migrations.
//
// What runs where: inside the auditor process; the database is any
// PostgreSQL reachable with the URL given to Open (--store postgres://…).
package postgres
