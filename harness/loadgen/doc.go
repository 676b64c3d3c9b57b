// Package loadgen sends HTTP requests at a constant rate and counts what
// fails, to measure what an upgrade costs the clients of a service. It is
// open-loop: requests start on a fixed schedule whether or not earlier ones
// have finished, so a stall shows up as failures and latency instead of
// silently slowing the generator down.
//
// Run returns the totals, failures by cause and latency percentiles of the
// successful requests once its context ends; a Live passed in Config shows
// the running totals meanwhile (the zero-downtime demo prints them once a
// second). A request that fails to connect, times out, or answers anything
// but 200 is a failure.
//
// With Config.Items the load writes instead: each request inserts a new
// item through the service's items API and reads it back, and fails unless
// both answer and the read gives what was written; Result.Acked lists every
// acknowledged write so a caller can check afterwards that none was lost.
package loadgen
