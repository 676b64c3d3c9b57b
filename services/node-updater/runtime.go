package nodeupdater

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// Runtime is the container engine as the updater uses it: only the
// operations a stop-first replacement, its revert and the inventory need, in
// the updater's own terms. The docker subpackage implements it with the
// Docker Engine API.
//
// Every method takes ctx first and must return when ctx ends. A method that
// finds no container returns an error matching ErrNotFound; one that cannot
// reach the engine returns an error matching ErrUnavailable.
type Runtime interface {
	// Name names the runtime in inventories and heartbeats: "docker" or "sim".
	Name() string
	// List returns every container labelled dev.cutover.node=node, running
	// or not.
	List(ctx context.Context, node string) ([]Container, error)
	// Inspect returns one container by name or ID.
	Inspect(ctx context.Context, nameOrID string) (Container, error)
	// Pull makes ref present on the node and returns its image ID.
	Pull(ctx context.Context, ref string) (imageID string, err error)
	// Stop stops a container, killing it after timeout. Stopping a stopped
	// container is not an error.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Rename renames a container.
	Rename(ctx context.Context, id, newName string) error
	// CreateReplacement creates (does not start) a container called name
	// from image with the user-set configuration of the container oldID:
	// everything but the image and the old image's defaults, with the same
	// networks, aliases, static addresses, mounts and volumes. labels are
	// set on it over those it keeps.
	CreateReplacement(ctx context.Context, oldID, name, image string, labels map[string]string) (id string, err error)
	// Start starts a created or stopped container.
	Start(ctx context.Context, id string) error
	// Remove removes a container, stopping it first if needed. It never
	// removes volumes.
	Remove(ctx context.Context, id string) error
	// Logs returns up to the last n lines of a container's stdout and stderr.
	Logs(ctx context.Context, id string, n int) ([]string, error)
	// Exec runs cmd inside a running container and returns its exit code and
	// the end of its combined output.
	Exec(ctx context.Context, id string, cmd []string) (exitCode int, output string, err error)
}

// Sentinel errors of Runtime implementations.
var (
	// ErrNotFound says a container or image does not exist. Inspect, Stop,
	// Rename, Start, Remove and Logs return it.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable says the engine could not be reached. Any method may
	// return it; the updater treats it as transient.
	ErrUnavailable = errors.New("container engine unavailable")
)

// Container is one container as the runtime reports it.
type Container struct {
	// ID is the engine's container ID.
	ID string
	// Name is the container name, without Docker's leading slash.
	Name string
	// Image is the image reference the container was created from.
	Image string
	// ImageID is the ID of the image it runs.
	ImageID string
	// Labels are the container labels.
	Labels map[string]string
	// State is the engine's state: created, running, restarting, exited, ...
	State string
	// Running is true while the process runs (also while restarting).
	Running bool
	// Restarting is true while the engine restarts it after an exit.
	Restarting bool
	// ExitCode is the last exit code.
	ExitCode int
	// StartedAt is when the process last started.
	StartedAt time.Time
	// StoppedAt is when the process last stopped, zero when it never did or
	// the engine cannot tell. Recovery measures a crash's outage from it.
	StoppedAt time.Time
	// RestartCount counts the engine's automatic restarts.
	RestartCount int
	// Healthcheck is true when the container or its image has a healthcheck.
	Healthcheck bool
	// Health is starting, healthy or unhealthy, or "" before the first check
	// or without a healthcheck.
	Health string
	// HealthOutput is the output of the last health check, for error reports.
	HealthOutput string
	// StopTimeout is the container's own stop grace period, 0 when unset.
	StopTimeout time.Duration
	// AutoRemove is true when the engine removes the container on exit.
	AutoRemove bool
	// Env is the container's environment (KEY=VALUE), read to hide its
	// secrets in the log lines a failed replacement reports.
	Env []string
	// IPAddress is the container's IPv4 address on its first network (the
	// one its network mode names, else the first by name), "" when it has
	// none (not running, host or none networking).
	IPAddress string
}

// Service returns the dev.cutover.service label.
func (c Container) Service() string { return c.Labels[events.LabelService] }

// WorkloadHost reports whether the container hosts workloads.
func (c Container) WorkloadHost() bool { return c.Labels[events.LabelWorkloadHost] == "true" }

// Health statuses reported in Container.Health.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// OldSuffix is appended to a container's name while its replacement is on
// trial: the old container is renamed, never removed, until the new one is
// healthy.
const OldSuffix = "-cutover-old"

// NewSuffix is appended to the name of a start-first replacement while it
// runs beside the old container, before it takes the name over.
const NewSuffix = "-cutover-new"

// oldName returns the name of a container while it is being replaced.
func oldName(name string) string { return name + OldSuffix }

// newName returns the temporary name of a start-first replacement.
func newName(name string) string { return name + NewSuffix }

// isNewName reports whether name is a start-first replacement on trial, and
// whose.
func isNewName(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, NewSuffix)
	return base, ok && base != ""
}

// isOldName reports whether name is a renamed old container, and whose.
func isOldName(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, OldSuffix)
	return base, ok && base != ""
}

// PullProgress is a snapshot of a pull in progress.
type PullProgress struct {
	// LayersDone counts layers downloaded and extracted, or already present.
	LayersDone int
	// LayersTotal counts the layers announced so far.
	LayersTotal int
	// BytesDone and BytesTotal sum the download progress reported per layer.
	BytesDone, BytesTotal int64
}

// progressPuller is a Runtime that can report a pull's progress. The
// updater publishes dev.cutover.container.pulling events from it; runtimes
// without it (the simulated one) only report the finished pull.
type progressPuller interface {
	PullWithProgress(ctx context.Context, ref string, progress func(PullProgress)) (imageID string, err error)
}
