// Package sim is a simulated container runtime for the node-updater: an
// in-memory implementation of nodeupdater.Runtime whose pull, stop, start
// and health latencies follow configurable distributions and whose steps
// fail with configurable probabilities, deterministic for a seed.
//
// What runs where: a Runtime holds one node's containers in memory (no
// engine, no processes). A Fleet runs, in the calling process, one real
// nodeupdater.Updater per simulated node, each with its own Runtime and its
// own durable consumer (node-updater-<node>), exactly as a real fleet would
// on NATS. `cutover rehearse`, the demo without Docker and the fleet
// benchmarks use it to drive the real planner against hundreds or thousands
// of nodes. It is never a silent default where Docker is available: callers
// choose it explicitly and say so.
//
// Failures strike only images a node did not run when the fleet was created
// (the release's new images): an image the node ran before pulls, starts and
// turns healthy every time. So a revert or a rollback always has a working
// image to return to, and a rehearsal measures what cutover does with a
// failing release, not a simulator that breaks its own way back.
package sim
