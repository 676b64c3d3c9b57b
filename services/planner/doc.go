// Package planner turns an upgrade request into a plan and drives it.
//
// It runs as one process per deployment (inside `cutover dev`, or on its own
// with cmd/planner). It reads dev.cutover.upgrade.requested, computes which
// containers change from the node-updaters' inventories in the cutover-nodes
// bucket, and sends node commands wave by wave, advancing on each node's
// completion. Its state per upgrade lives in the cutover-upgrades bucket,
// written with compare-and-swap together with an outbox of the events the
// change implies, so a planner killed at any point resumes on restart without
// repeating a step. On a failed wave it rolls the changed nodes back to their
// previous images, latest first, and never loops on a failed rollback.
package planner
