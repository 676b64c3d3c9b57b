// Package fleetinfo is what the CLI reads and reports about the fleet and the
// bus: the node-updaters (cutover nodes), the scope locks (cutover locks),
// the refused messages (cutover rejected) and what cutover adopt would take
// over from a node's Docker engine.
package fleetinfo
