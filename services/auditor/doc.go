// Package auditor records every cutover event in a history store and serves
// that history over HTTP.
//
// An Auditor runs one durable JetStream consumer ("auditor") over the whole
// CUTOVER stream (cutover.>) and appends each decoded event to a Store, keyed
// by its id, so a redelivered or republished event is stored once. Messages
// the consume helper refuses are not stored; the dev.cutover.event.rejected
// events it publishes about them are, like any other event.
//
// The package holds the domain types (Record, UpgradeSummary, State) and the
// interfaces it needs from a store (Store for the consumer, History for the
// HTTP API); the sqlite and postgres subpackages implement both and pass the
// same conformance suite (storetest). A Hub fans stored records out to live
// clients, Observers (metrics, notify) are told of each record stored for
// the first time, and NewDashboard serves the pages
// (html/template and a small script, embedded) with Server-Sent Events on
// /api/stream. Health verdicts and rollback requests are the verdict
// subpackage's; Prometheus metrics the metrics subpackage's; webhooks the
// notify subpackage's.
//
// What runs where: one auditor process per deployment (cmd/auditor, or
// `cutover dev`), with its history in a local SQLite file or, distributed,
// in PostgreSQL (--store postgres://…).
package auditor
