// Package verdict judges services' health during the watch windows of an
// upgrade and asks for a rollback when a service fails its policy.
//
// A Judge is the pure state machine: it is fed the planner's events (plan,
// wave.completed, upgrade.completed, the end of an upgrade), the
// node-updaters' container.replaced events (measured interruptions) and
// health signals, each with the time the stream stored it, and it returns
// the events to publish: dev.cutover.health.verdict and, for a failing
// verdict under a rollback policy, dev.cutover.rollback.requested. Tick
// closes the windows whose time is up. Evaluate is the policy itself:
// N consecutive failures from one source, a failure ratio over the window
// with at least M signals, a measured interruption above max_interruption,
// a minimum healthy time, and no signal means inconclusive, never healthy.
//
// Memory is bounded whatever the input: a window keeps counters and a short
// ring of recent signals as evidence, the number of upgrades, windows and
// sources per window is capped, and signals for services no window or
// policy knows, signals outside any window and undecodable messages are
// counted and dropped.
//
// A Watcher runs a Judge in the auditor process: an ordered JetStream
// consumer (no acks, so a flood of signals costs no round trips) reads the
// relevant subjects of the CUTOVER stream, starting a little in the past so
// that a restarted auditor rebuilds the windows still open; one goroutine
// owns the Judge and publishes its events with ids derived from the window,
// so what a restarted auditor decides again is deduplicated by JetStream.
//
// Policies come from configuration through Policies: ParsePolicy reads the
// flag syntax SERVICE:consecutive=3,ratio=0.5,min_signals=4,min_healthy=10s,
// max_interruption=5s,action=rollback (Policies is a repeatable flag.Value),
// ParsePoliciesYAML a file; both report every problem at once.
package verdict
