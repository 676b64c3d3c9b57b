// Package planner turns an upgrade request into a plan and drives it.
//
// It runs inside `cutover dev`, or on its own with cmd/planner, as one or
// more replicas per deployment. Only the holder of the leader lease (key
// planner.leader in the cutover-locks bucket, refreshed every LeaseTTL/5)
// consumes events; a standby that sees the lease unchanged for LeaseTTL
// takes it over with compare-and-swap and resumes from KV. Staleness is
// judged on the standby's own clock, so clock skew between hosts is harmless.
// The lease holds the instance name and a nonce drawn per process, so a
// second process given the same --instance waits like any standby (and
// says so) instead of taking the lease as its own; a restart after a crash
// waits for the old lease to go stale, one after a clean stop takes it at once.
//
// The leader reads dev.cutover.upgrade.requested, computes which containers
// change from the node-updaters' inventories in the cutover-nodes bucket
// (with rollout settings and databases from an optional inventory file,
// package inventory), plans waves with package plan (dependency levels, a
// canary per service, growth up to max_unavailable), and executes:
//
//  1. expand migrations: for every service whose new image carries
//     migrations beyond its database's version, a
//     dev.cutover.migration.requested (phase expand) to the migrator, one
//     database at a time, waiting for its answer;
//  2. the waves: node commands wave by wave, advancing when every node of
//     the wave answered. A step that restarts a workload host first sends
//     dev.cutover.node.drain.requested and waits for
//     dev.cutover.node.drained from an external evacuator; an undrained
//     node gets no command at all (its step fails at the drain timeout);
//  3. contract migrations, each behind a version barrier: the planner polls
//     cutover-nodes until every instance of the service runs the new image
//     (never a fixed sleep), and says what it waits for in Upgrade.Barrier;
//  4. completion.
//
// A wave whose nodes do not answer within the progress deadline fails with
// a reason naming them. A failure applies the upgrade's failure_action:
// rollback (default) returns the changed nodes to their previous images,
// latest first, then the migrated databases to their pre-upgrade versions
// (with the snapshot from migration.completed); pause waits for an
// operator; continue goes on (waves only: a failed migration never
// continues). A rollback that fails pauses and reports instead of looping.
//
// Operators control an upgrade with dev.cutover.upgrade.control.requested
// (cutover pause|resume|abort) and dev.cutover.rollback.requested (cutover
// rollback). Pause lets the steps in flight settle and starts nothing new;
// resume retries what failed in the current step, and is refused (with a
// dev.cutover.event.rejected naming the fix) after a failed rollback; abort
// stops for good and rolls nothing back. Every action is idempotent.
//
// State per upgrade lives in the cutover-upgrades bucket: a small record
// written with compare-and-swap together with an outbox of the events the
// change implies and the steps it changed, and a key per step (see
// store.go), so a planner killed at any point resumes without repeating a
// step and a node's answer does not rewrite the whole fleet's state. One
// upgrade runs per scope (a lock in cutover-locks); a paused upgrade keeps
// the lock, and a second request is refused with an event naming the
// running one.
//
// Where things are: machine.go and machine_inputs.go are the state machine,
// pure (an upgrade, one input and the time in; the upgrade changed and what
// to save, publish and log out), tested row by row in machine_test.go. Around it: handlers.go
// decodes events and loads upgrades, outbox.go saves and publishes a
// decision, lock.go holds the scope lock, deadline.go polls deadlines and
// version barriers, fleet.go reads the node-updaters' inventories, lease.go
// elects the leader, store.go keeps upgrades in KV, config.go holds Config.
package planner
