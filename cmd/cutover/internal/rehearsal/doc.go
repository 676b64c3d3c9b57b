// Package rehearsal runs an upgrade against a simulated fleet (cutover
// rehearse): an embedded NATS server, the real planner and one real
// node-updater per node on the sim runtime, the upgrade's history checked
// against the safety invariants and summed up in a report (duration,
// events/s, most instances down at once). BenchmarkFleet and
// BenchmarkFleetCluster measure the planner and the bus with it.
package rehearsal
