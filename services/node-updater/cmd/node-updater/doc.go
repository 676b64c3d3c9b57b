// Command node-updater runs one cutover node-updater against the local Docker
// engine; the distributed deployment runs one per node (one per engine).
//
// Usage:
//
//	node-updater --node NAME [--nats URL] [--log-level LEVEL] [--inventory FILE] [--ack-wait D]
//
// Flags (the only configuration this binary reads; of the environment it
// reads only the test hook below):
//
//	--node NAME         required; the updater manages the containers labelled
//	                    dev.cutover.node=NAME and reads cutover.node.NAME.cmd
//	--nats URL          NATS server with JetStream (default nats://127.0.0.1:4222)
//	--log-level LEVEL   debug, info (default), warn or error
//	--inventory FILE    a cutover inventory: also manage, by name, the
//	                    containers it places on this node that carry no
//	                    cutover label (kolla-ansible's); their first
//	                    replacement adds the labels (see cutover adopt)
//	--ack-wait D        how long NATS waits for a command's ack before
//	                    redelivering it (default 30s); after a crash the
//	                    command in progress comes back once it has passed
//
// Test hook: CUTOVER_CRASH_AFTER=<step> (pull, rename, stop, create, start,
// health, swap) makes the process kill itself with SIGKILL right after that
// step of a replacement. Crash tests use it to prove recovery from a real
// kill -9; never set it in production.
//
// What runs where: this process connects to NATS (creating the CUTOVER
// stream and KV buckets if missing, as every service does), connects to the
// Docker engine found the usual way (DOCKER_HOST and friends, read by the
// Docker client, else the local socket), and runs a nodeupdater.Updater with
// the docker runtime until SIGINT or SIGTERM. On a signal the replacement in
// progress gets 30 seconds to finish; after that it is reverted and its
// command is redelivered after the next start.
package main
