// Package planner turns an upgrade request into a plan and drives it.
//
// It runs as one process per deployment (inside `cutover dev`, or on its own
// with cmd/planner). It reads dev.cutover.upgrade.requested, computes which
// containers change from the node-updaters' inventories in the cutover-nodes
// bucket (with rollout settings from an optional inventory file, package
// inventory), plans waves with package plan (dependency levels, a canary per
// service, growth up to max_unavailable), and sends node commands wave by
// wave, advancing when every node of the wave answered. A wave whose nodes
// do not answer within the progress deadline fails with a reason naming them. Its state per upgrade lives in the cutover-upgrades bucket,
// written with compare-and-swap together with an outbox of the events the
// change implies, so a planner killed at any point resumes on restart without
// repeating a step. On a failed wave it rolls the changed nodes back to their
// previous images, latest first, and never loops on a failed rollback.
package planner
