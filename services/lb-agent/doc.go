// Package lbagent is the load-balancer agent: it keeps HAProxy in step with
// the node-updaters so clients never reach a container that is stopping.
//
// It runs next to an HAProxy (one agent per load balancer) and reads every
// node's status events. When a node-updater announces that a container is
// draining, the agent sets the container's backend server to drain (no new
// sessions), waits until its open sessions end or a timeout passes, puts it
// in maintenance and acknowledges with dev.cutover.container.drained on the
// node's ack subject; the node-updater stops the container only then (when
// the container target sets drain_ack_timeout_ms). When the container has
// been replaced (or reverted, or its update failed) the server goes back to
// ready; HAProxy's own health check decides when it receives traffic again.
//
// Backend servers must keep their address across a replacement (a static
// IP on a user network, or a name HAProxy resolves), since the agent
// changes states, not addresses.
package lbagent
