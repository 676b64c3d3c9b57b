// Package nodeupdater is the node-updater service: one runs per container
// engine (per node) and replaces that node's containers safely on command.
//
// What runs where:
//
//   - The Updater reads commands (dev.cutover.node.update.requested) from
//     cutover.node.<node>.cmd through its own durable JetStream consumer
//     (node-updater-<node>), one command at a time, and reports every step
//     on cutover.node.<node>.status.
//   - It drives containers through a Runtime, an interface declared here in
//     the updater's own terms; the docker subpackage implements it with the
//     Docker Engine API. The updater owns only containers labelled
//     dev.cutover.node=<node>, so several updaters can share one engine,
//     and, with Config.Adopt, the unlabelled containers the inventory
//     names (kolla-ansible's), through a runtime wrapper (adopt.go) that
//     reports them with the inventory's labels; their first replacement
//     writes those labels for real.
//   - A goroutine owned by the Updater refreshes the node's entry in the
//     cutover-nodes KV bucket (whose TTL marks a silent node as lost) and
//     sends heartbeats. Close stops it and waits.
//   - A goroutine owned by the Updater publishes the status events from an
//     in-memory outbox (outbox.go), in order, holding them while the bus
//     does not take them. A command is acked once its final event is stored.
//   - cmd/node-updater is the binary: it reads flags, connects to NATS and
//     Docker, and runs an Updater until SIGINT or SIGTERM.
//
// A replacement pulls the target; if the container already runs it, it
// reports "unchanged" and does nothing. Otherwise it publishes "draining"
// and, when the target sets drain_ack_timeout_ms, waits for a
// dev.cutover.container.drained acknowledgement on cutover.node.<node>.ack
// (from a load-balancer agent) or the timeout. Then, by strategy:
//
//   - stop-first (default): rename the old container to <name>-cutover-old
//     while it still runs, stop it, create the new one under the name with
//     the same user-set configuration, start it, gate on its health, and
//     only then remove the old one.
//   - start-first: create and start the new container as <name>-cutover-new
//     beside the old one, gate on its health, rename the old one to
//     <name>-cutover-old, give the new one the name, then stop and remove
//     the old one. Both run at once, so start-first is for services without
//     fixed host ports or static IP addresses.
//
// The health gate is the image's Docker HEALTHCHECK when it has one, else
// the target's probe (HTTP GET or TCP connect to the container's address on
// its first network, or a command run with the exec API), else "running
// without restart for min_healthy". An exit, a restart or a failed gate
// reverts: remove the new container, start the old one, give it its name
// back. Volumes are never removed.
//
// Crash safety comes from the names on the engine, which are the durable
// record of a replacement in flight: a stopped old container always carries
// the -cutover-old name, a start-first trial always the -cutover-new name.
// On Start, before any command is read, recovery removes trials, and for
// each -cutover-old container either finishes the replacement (a new
// container runs under the name and passes the gate) or reverts it. The
// interrupted command, never acked, is redelivered and then resolves as
// replaced (recovery finished it) or redoes the replacement.
//
// A rollback command (rollback=true) may leave a target's image empty: the
// container then goes back to the image it ran before its last replacement,
// recorded in the inventory (previous_image) and in each replaced event's
// from_image. It is refused when none is recorded or when that image is the
// one running.
package nodeupdater
