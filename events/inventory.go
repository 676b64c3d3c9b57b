package events

import "time"

// Container labels a deployment sets so cutover knows what it owns.
const (
	// LabelNode names the node (node-updater) that owns a container.
	LabelNode = "dev.cutover.node"
	// LabelService names the service a container belongs to; release
	// manifests target services by this name.
	LabelService = "dev.cutover.service"
	// LabelWorkloadHost marks a container whose processes are workloads (VMs):
	// it is never stopped unless its node was drained.
	LabelWorkloadHost = "dev.cutover.workload-host"
)

// NodeInventory is the value of a node's key in the cutover-nodes bucket:
// what its node-updater observes. The entry expires when the node-updater
// stops refreshing it, which marks the node as lost.
type NodeInventory struct {
	// Node is the node name, also the KV key.
	Node string `json:"node"`
	// AgentVersion is the node-updater's version.
	AgentVersion string `json:"agent_version"`
	// Runtime is docker or sim.
	Runtime string `json:"runtime"`
	// UpdatedAt is when the node-updater last observed its containers.
	UpdatedAt time.Time `json:"updated_at"`
	// Containers are the containers the node-updater owns, sorted by name.
	Containers []ObservedContainer `json:"containers"`
}

// ObservedContainer is one container as a node-updater sees it.
type ObservedContainer struct {
	// Name is the container name.
	Name string `json:"name"`
	// ID is the engine's container id.
	ID string `json:"id"`
	// Service is the dev.cutover.service label.
	Service string `json:"service,omitempty"`
	// Image is the image reference the container was created from.
	Image string `json:"image"`
	// ImageID is the local image id (config digest).
	ImageID string `json:"image_id"`
	// State is the engine's state: running, exited, ...
	State string `json:"state"`
	// Health is healthy, unhealthy, starting, or "" without a healthcheck.
	Health string `json:"health,omitempty"`
	// WorkloadHost is true for containers that host workloads.
	WorkloadHost bool `json:"workload_host,omitempty"`
	// PreviousImage is the image before the last replacement, kept for rollback.
	PreviousImage string `json:"previous_image,omitempty"`
}
