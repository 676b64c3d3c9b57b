// Package haproxy drives a real HAProxy through its runtime API (the stats
// socket): take a backend server out of rotation gracefully (drain, wait
// for its sessions to end, maintenance) and put it back (ready). It also
// runs an HAProxy process for tests and the zero-downtime demo.
//
// Run's configuration keeps HAProxy's retries and redispatch on (as
// kolla-ansible's does); Backend.NoRetry turns them off for a backend, so
// a request sent to a server that is gone fails instead of being retried
// elsewhere after a stall.
package haproxy
