// Package scenario holds what cutover's demos run, and the tests and
// benchmarks that share their set-up: the demo (three containers v1 -> v2
// on the local Docker engine, or on the simulated runtime without one), the
// zero-downtime scenario (three replicas behind a real HAProxy under load,
// with and without drain), the expand/contract scenario (v1 and v2
// sharing one SQLite database through expand -> roll -> contract) and the
// cluster demo (three nats-server processes and every service a process of
// its own; a server and the leading planner killed mid-upgrade).
//
// One set-up serves them all: kit (a work directory, the demo app built
// once, an in-process registry with its images) and, for the HAProxy
// scenarios, bed (the replicas, HAProxy, the in-process stack and the
// lb-agent). The cobra commands stay in cmd/cutover; they only map flags
// onto the options here.
package scenario
