// Package lbagent will hold the load-balancer agent of issue 8: it follows
// the node-updaters' draining and replaced events and takes backend servers
// out of HAProxy before a container stops and back in once its replacement
// is healthy. Its building blocks live in haproxy/ (the runtime API client
// and a process runner) and loadgen/ (a constant-rate load generator); the
// agent itself is not written yet.
package lbagent
