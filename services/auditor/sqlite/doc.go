// Package sqlite is the auditor's history store on SQLite, in pure Go
// (modernc.org/sqlite, no cgo).
//
// A Store is one database file in WAL mode: a single writer connection for
// Append and a small pool of read-only connections for the queries, so the
// HTTP API reads while the consumer writes. The schema is versioned with
// golang-migrate from the SQL files embedded from migrations/; Open applies
// the missing ones.
package sqlite
