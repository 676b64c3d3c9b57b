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
// HTTP API); the sqlite subpackage implements both. Later issues add health
// verdicts over watch windows and a dashboard on top of the same history.
//
// What runs where: one auditor process per deployment (cmd/auditor, or
// `cutover dev`), with its history in a local SQLite file.
package auditor
