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
//     dev.cutover.node=<node>, so several updaters can share one engine.
//   - A goroutine owned by the Updater refreshes the node's entry in the
//     cutover-nodes KV bucket (whose TTL marks a silent node as lost) and
//     sends heartbeats. Close stops it and waits.
//   - cmd/node-updater is the binary: it reads flags, connects to NATS and
//     Docker, and runs an Updater until SIGINT or SIGTERM.
//
// A replacement is stop-first: pull; if the container already runs the
// target image, report "unchanged"; else stop the old container, rename it
// to <name>-cutover-old, create the new one under the name with the same
// user-set configuration, start it, wait for it to be healthy, and only
// then remove the old one. Any failure after the stop reverts: remove the
// new container, rename the old one back, start it. Volumes are never
// removed. On Start, replacements a crash left unfinished are finished or
// reverted before any command is read.
package nodeupdater
