package events

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Event types, one per step of the upgrade lifecycle. Every type is listed in
// Catalog with its subject, producer and consumers.
const (
	TypeUpgradeRequested           = "dev.cutover.upgrade.requested"
	TypeUpgradePlanned             = "dev.cutover.upgrade.planned"
	TypeUpgradeStarted             = "dev.cutover.upgrade.started"
	TypeWaveStarted                = "dev.cutover.upgrade.wave.started"
	TypeWaveCompleted              = "dev.cutover.upgrade.wave.completed"
	TypeUpgradeCompleted           = "dev.cutover.upgrade.completed"
	TypeUpgradeFailed              = "dev.cutover.upgrade.failed"
	TypeUpgradePaused              = "dev.cutover.upgrade.paused"
	TypeUpgradeAborted             = "dev.cutover.upgrade.aborted"
	TypeNodeUpdateRequested        = "dev.cutover.node.update.requested"
	TypeContainerPulled            = "dev.cutover.container.pulled"
	TypeContainerDraining          = "dev.cutover.container.draining"
	TypeContainerReplaced          = "dev.cutover.container.replaced"
	TypeContainerReverted          = "dev.cutover.container.reverted"
	TypeNodeUpdateCompleted        = "dev.cutover.node.update.completed"
	TypeNodeUpdateFailed           = "dev.cutover.node.update.failed"
	TypeNodeHeartbeat              = "dev.cutover.node.heartbeat"
	TypeMigrationRequested         = "dev.cutover.migration.requested"
	TypeMigrationStarted           = "dev.cutover.migration.started"
	TypeMigrationCompleted         = "dev.cutover.migration.completed"
	TypeMigrationFailed            = "dev.cutover.migration.failed"
	TypeMigrationRollbackRequested = "dev.cutover.migration.rollback.requested"
	TypeMigrationRollbackCompleted = "dev.cutover.migration.rollback.completed"
	TypeMigrationStatusRequested   = "dev.cutover.migration.status.requested"
	TypeMigrationStatusReported    = "dev.cutover.migration.status.reported"
	TypeHealthSignal               = "dev.cutover.health.signal"
	TypeHealthVerdict              = "dev.cutover.health.verdict"
	TypeRollbackRequested          = "dev.cutover.rollback.requested"
	TypeRollbackCompleted          = "dev.cutover.rollback.completed"
	TypeEventRejected              = "dev.cutover.event.rejected"
)

// Data is implemented by the data struct of every event type.
type Data interface {
	// EventType returns the CloudEvents type the data belongs to.
	EventType() string
}

// Validator is implemented by data structs that check more than their JSON
// Schema can express. Decode calls it after schema validation.
type Validator interface {
	Validate() error
}

// UpgradeRequested asks the planner to bring the fleet to a release.
type UpgradeRequested struct {
	// Release is the target: an image per service.
	Release Release `json:"release"`
	// FailureAction says what the planner does when a step fails: rollback (default), pause or continue.
	FailureAction string `json:"failure_action,omitempty" jsonschema:"enum=rollback,enum=pause,enum=continue"`
	// RequestedBy names the person or system that asked, for the history.
	RequestedBy string `json:"requested_by,omitempty" jsonschema:"maxLength=256"`
	// WaitForVerdicts makes each wave wait, before it starts, for the auditor's healthy verdict on every service the wave before it changed; a failing or inconclusive verdict, or none within the verdict timeout, pauses the upgrade.
	WaitForVerdicts bool `json:"wait_for_verdicts,omitempty"`
	// VerdictTimeoutMs bounds that wait (default: the planner's, 5 minutes).
	VerdictTimeoutMs int64 `json:"verdict_timeout_ms,omitempty" jsonschema:"minimum=0"`
	// PauseAfterCanary pauses the upgrade once its first wave (the canary) completed, until an operator sends promote (or rollback, or abort).
	PauseAfterCanary bool `json:"pause_after_canary,omitempty"`
}

// Release names a target image per service.
type Release struct {
	// Name is a human label for the release, e.g. "2025.1" or "demo-v2".
	Name string `json:"name" jsonschema:"minLength=1,maxLength=256"`
	// Services maps a service name (the dev.cutover.service container label) to its target.
	Services map[string]ServiceRelease `json:"services"`
}

// ServiceRelease is the target of one service.
type ServiceRelease struct {
	// Image is the target image reference, by tag or by digest (repo@sha256:...).
	Image string `json:"image" jsonschema:"minLength=1,maxLength=1024"`
	// Strategy is stop-first (default) or start-first.
	Strategy string `json:"strategy,omitempty" jsonschema:"enum=stop-first,enum=start-first"`
	// MinHealthy is how long, in milliseconds, a new container must stay healthy before the old one is removed.
	MinHealthyMs int64 `json:"min_healthy_ms,omitempty" jsonschema:"minimum=0"`
	// HealthTimeoutMs bounds the wait for a new container to become healthy.
	HealthTimeoutMs int64 `json:"health_timeout_ms,omitempty" jsonschema:"minimum=0"`
	// DrainAckTimeoutMs, when set, makes node-updaters wait up to this long for a load balancer's dev.cutover.container.drained before stopping a container.
	DrainAckTimeoutMs int64 `json:"drain_ack_timeout_ms,omitempty" jsonschema:"minimum=0"`
	// DrainAckRequired fails the replacement when no acknowledgement comes in time (default: go on).
	DrainAckRequired bool `json:"drain_ack_required,omitempty"`
	// Probe is the health check of new containers whose image has no Docker HEALTHCHECK.
	Probe *Probe `json:"probe,omitempty"`
	// MigrationsVersion is the highest migration version the new image carries; above the database's version (inventory) the planner migrates the service's database (expand before the rolling waves, contract after).
	MigrationsVersion uint `json:"migrations_version,omitempty"`
	// Images overrides Image per container name, for a service whose containers run different images (kolla's keystone_ssh, keystone_fernet and keystone).
	Images map[string]string `json:"images,omitempty"`
}

// Validate checks what the schema cannot: at least one service, and a
// verdict timeout only with the wait it bounds.
func (r UpgradeRequested) Validate() error {
	if len(r.Release.Services) == 0 {
		return &FieldError{Field: "data.release.services", Reason: "is empty; name at least one service and its target image"}
	}
	for _, svc := range slices.Sorted(maps.Keys(r.Release.Services)) {
		if n := len(r.Release.Services[svc].Images); n > 64 {
			return &FieldError{Field: "data.release.services." + svc + ".images", Reason: fmt.Sprintf("has %d entries, more than 64 containers per service", n)}
		}
		for _, c := range slices.Sorted(maps.Keys(r.Release.Services[svc].Images)) {
			img := r.Release.Services[svc].Images[c]
			if c == "" || img == "" || len(c) > 255 || len(img) > 1024 {
				return &FieldError{Field: "data.release.services." + svc + ".images", Reason: fmt.Sprintf("entry %.40q: %.40q is not a container name (1-255 characters) and an image reference (1-1024 characters)", c, img)}
			}
		}
	}
	if r.VerdictTimeoutMs > 0 && !r.WaitForVerdicts {
		return &FieldError{Field: "data.verdict_timeout_ms", Reason: "is set but wait_for_verdicts is not, so nothing would wait; set wait_for_verdicts: true or drop verdict_timeout_ms"}
	}
	return nil
}

// EventType implements Data.
func (UpgradeRequested) EventType() string { return TypeUpgradeRequested }

// ContainerChange is one planned change of one container.
type ContainerChange struct {
	// Node is the node that runs the container.
	Node string `json:"node"`
	// Container is the container name.
	Container string `json:"container"`
	// Service is the service the container belongs to.
	Service string `json:"service"`
	// FromImage is the image the container runs now.
	FromImage string `json:"from_image"`
	// ToImage is the target image.
	ToImage string `json:"to_image"`
	// Reason explains the change, e.g. "image differs".
	Reason string `json:"reason"`
}

// PlannedWave is one wave of the plan: nodes updated together.
type PlannedWave struct {
	// Index is the wave number, from 0.
	Index int `json:"index"`
	// Nodes are the nodes updated in this wave.
	Nodes []string `json:"nodes"`
}

// UpgradePlanned carries the plan the planner computed.
type UpgradePlanned struct {
	// Release is the release name.
	Release string `json:"release"`
	// Changes are the containers that change.
	Changes []ContainerChange `json:"changes"`
	// Unchanged counts the containers of released services that already run the target.
	Unchanged int `json:"unchanged"`
	// Waves is the order of execution. A plan in parts has them in part 1.
	Waves []PlannedWave `json:"waves"`
	// Part numbers this event among the parts of a plan too large for one
	// event, from 1; 0 (absent) for a plan sent whole. Every part carries
	// a share of Changes; a consumer that needs them all gathers the parts.
	Part int `json:"part,omitempty" jsonschema:"minimum=0"`
	// Parts is how many parts the plan has; 0 (absent) for a plan sent whole.
	Parts int `json:"parts,omitempty" jsonschema:"minimum=0"`
}

// EventType implements Data.
func (UpgradePlanned) EventType() string { return TypeUpgradePlanned }

// UpgradeStarted says execution began.
type UpgradeStarted struct {
	// Waves is the number of waves to run.
	Waves int `json:"waves"`
}

// EventType implements Data.
func (UpgradeStarted) EventType() string { return TypeUpgradeStarted }

// WaveStarted says a wave's node commands were sent.
type WaveStarted struct {
	// Wave is the wave index.
	Wave int `json:"wave"`
	// Nodes are the nodes of the wave.
	Nodes []string `json:"nodes"`
}

// EventType implements Data.
func (WaveStarted) EventType() string { return TypeWaveStarted }

// WaveCompleted says every node of a wave reported completion.
type WaveCompleted struct {
	// Wave is the wave index.
	Wave int `json:"wave"`
	// Nodes are the nodes of the wave.
	Nodes []string `json:"nodes"`
	// Replaced counts containers replaced in the wave.
	Replaced int `json:"replaced"`
	// Unchanged counts containers that already ran the target.
	Unchanged int `json:"unchanged"`
}

// EventType implements Data.
func (WaveCompleted) EventType() string { return TypeWaveCompleted }

// UpgradeCompleted says every wave completed.
type UpgradeCompleted struct {
	// Release is the release name.
	Release string `json:"release"`
	// Replaced counts containers replaced.
	Replaced int `json:"replaced"`
	// Unchanged counts containers that already ran the target.
	Unchanged int `json:"unchanged"`
	// DurationMs is the time from request to completion.
	DurationMs int64 `json:"duration_ms"`
}

// EventType implements Data.
func (UpgradeCompleted) EventType() string { return TypeUpgradeCompleted }

// UpgradeFailed says the upgrade stopped on an error.
type UpgradeFailed struct {
	// Reason says what failed and what to do next.
	Reason string `json:"reason"`
	// Wave is the wave that failed, or -1 before execution.
	Wave int `json:"wave"`
	// Node is the node that failed, when one did.
	Node string `json:"node,omitempty"`
}

// EventType implements Data.
func (UpgradeFailed) EventType() string { return TypeUpgradeFailed }

// UpgradePaused says the upgrade waits for an operator.
type UpgradePaused struct {
	// Reason says why it paused.
	Reason string `json:"reason"`
	// Wave is the wave it paused in.
	Wave int `json:"wave"`
}

// EventType implements Data.
func (UpgradePaused) EventType() string { return TypeUpgradePaused }

// UpgradeAborted says the upgrade was stopped for good.
type UpgradeAborted struct {
	// Reason says why.
	Reason string `json:"reason"`
	// By names who aborted it.
	By string `json:"by,omitempty"`
}

// EventType implements Data.
func (UpgradeAborted) EventType() string { return TypeUpgradeAborted }

// ContainerTarget is one container a node-updater must bring to an image.
type ContainerTarget struct {
	// Container is the container name on the node.
	Container string `json:"container" jsonschema:"minLength=1"`
	// Service is the service it belongs to.
	Service string `json:"service,omitempty"`
	// Image is the target image reference (tag or digest). In a rollback command an empty image means the container's recorded previous image.
	Image string `json:"image"`
	// Strategy is stop-first (default) or start-first.
	Strategy string `json:"strategy,omitempty" jsonschema:"enum=stop-first,enum=start-first"`
	// MinHealthyMs is how long the new container must stay healthy before the old one is removed.
	MinHealthyMs int64 `json:"min_healthy_ms,omitempty" jsonschema:"minimum=0"`
	// HealthTimeoutMs bounds the wait for the new container to become healthy.
	HealthTimeoutMs int64 `json:"health_timeout_ms,omitempty" jsonschema:"minimum=0"`
	// Probe checks the new container's health when its image has no Docker HEALTHCHECK.
	Probe *Probe `json:"probe,omitempty"`
	// DrainAckTimeoutMs, when set, makes the node-updater wait up to this long after draining for a dev.cutover.container.drained acknowledgement before it stops the container.
	DrainAckTimeoutMs int64 `json:"drain_ack_timeout_ms,omitempty" jsonschema:"minimum=0"`
	// DrainAckRequired fails the replacement, leaving the old container serving, when no acknowledgement came in time; by default the replacement goes on.
	DrainAckRequired bool `json:"drain_ack_required,omitempty"`
}

// NodeUpdateRequested commands one node-updater to update containers in order.
type NodeUpdateRequested struct {
	// Wave is the planner's wave index.
	Wave int `json:"wave"`
	// Containers are updated one by one in this order.
	Containers []ContainerTarget `json:"containers" jsonschema:"minItems=1"`
	// Rollback marks a command that returns containers to their previous image.
	Rollback bool `json:"rollback,omitempty"`
	// Drained says the node's workloads were evacuated, so workload hosts may restart.
	Drained bool `json:"drained,omitempty"`
}

// EventType implements Data.
func (NodeUpdateRequested) EventType() string { return TypeNodeUpdateRequested }

// ContainerPulled says the target image is present on the node.
type ContainerPulled struct {
	// Container is the container being updated.
	Container string `json:"container"`
	// Image is the reference pulled.
	Image string `json:"image"`
	// ImageID is the local image id (config digest).
	ImageID string `json:"image_id"`
	// DurationMs is the pull time.
	DurationMs int64 `json:"duration_ms"`
}

// EventType implements Data.
func (ContainerPulled) EventType() string { return TypeContainerPulled }

// ContainerDraining says a container is about to stop; load balancers take it out.
type ContainerDraining struct {
	// Container is the container about to stop.
	Container string `json:"container"`
	// Service is its service.
	Service string `json:"service,omitempty"`
}

// EventType implements Data.
func (ContainerDraining) EventType() string { return TypeContainerDraining }

// Results of a container update.
const (
	ResultReplaced  = "replaced"
	ResultUnchanged = "unchanged"
	ResultReverted  = "reverted"
)

// ContainerReplaced says a container runs its target image, or already did.
type ContainerReplaced struct {
	// Container is the container name.
	Container string `json:"container"`
	// Service is its service.
	Service string `json:"service,omitempty"`
	// Result is replaced or unchanged.
	Result string `json:"result" jsonschema:"enum=replaced,enum=unchanged"`
	// FromImage is the previous image reference.
	FromImage string `json:"from_image"`
	// ToImage is the new image reference.
	ToImage string `json:"to_image"`
	// FromImageID is the previous image id, kept for rollback.
	FromImageID string `json:"from_image_id,omitempty"`
	// ToImageID is the new image id.
	ToImageID string `json:"to_image_id,omitempty"`
	// InterruptionMs is the time from old stopped to new healthy (0 when
	// unchanged). When a node-updater crash interrupted the replacement, it
	// also counts the outage before the crash and until recovery: measured
	// from when the engine says the old container stopped, never from the
	// restart.
	InterruptionMs int64 `json:"interruption_ms"`
	// InterruptionUnknown says the engine could not tell when the old
	// container stopped before a crash, so InterruptionMs counts only what
	// this node-updater saw and the true interruption is longer.
	InterruptionUnknown bool `json:"interruption_unknown,omitempty"`
	// Recovered says the node-updater's start-up recovery finished this
	// replacement after a crash had interrupted it.
	Recovered bool `json:"recovered,omitempty"`
}

// EventType implements Data.
func (ContainerReplaced) EventType() string { return TypeContainerReplaced }

// ContainerReverted says a replacement failed and the old container serves again.
type ContainerReverted struct {
	// Container is the container name.
	Container string `json:"container"`
	// Step is the step that failed: pull, drain, rename, stop, create,
	// start, health or swap; recovery when the node-updater's start-up
	// recovery reverted a replacement a crash (or kill) interrupted.
	Step string `json:"step"`
	// Reason is the error, as the engine or health gate reported it.
	Reason string `json:"reason"`
	// Image is the image that failed.
	Image string `json:"image"`
	// LastLogs are the failed container's last log lines, secrets redacted
	// (package events/redact: values of the container's environment variables
	// whose name looks secret, password=/token=-style values, URL passwords,
	// bearer tokens become REDACTED).
	LastLogs []string `json:"last_logs,omitempty"`
	// InterruptionMs is how long the container did not serve, from when the
	// engine says the old container stopped until it served again; 0 when
	// it was never stopped. Set by recovery (step recovery).
	InterruptionMs int64 `json:"interruption_ms,omitempty"`
	// InterruptionUnknown says the old container had stopped but the engine
	// could not tell when, so the interruption is not known.
	InterruptionUnknown bool `json:"interruption_unknown,omitempty"`
}

// EventType implements Data.
func (ContainerReverted) EventType() string { return TypeContainerReverted }

// ContainerResult is the outcome for one container of a node command.
type ContainerResult struct {
	// Container is the container name.
	Container string `json:"container"`
	// Result is replaced, unchanged or reverted.
	Result string `json:"result" jsonschema:"enum=replaced,enum=unchanged,enum=reverted"`
	// FromImage is the image before.
	FromImage string `json:"from_image,omitempty"`
	// ToImage is the image after.
	ToImage string `json:"to_image,omitempty"`
	// InterruptionMs is the time from old stopped to new healthy, plus,
	// when a node-updater crash interrupted an earlier try of this command
	// and recovery reverted it, the outage that try caused.
	InterruptionMs int64 `json:"interruption_ms,omitempty"`
	// InterruptionUnknown says part of the interruption could not be
	// measured (see ContainerReplaced): the true one is longer.
	InterruptionUnknown bool `json:"interruption_unknown,omitempty"`
}

// NodeUpdateCompleted says every container of a node command reached its target.
type NodeUpdateCompleted struct {
	// Wave is the wave of the command.
	Wave int `json:"wave"`
	// Rollback echoes the command's flag.
	Rollback bool `json:"rollback,omitempty"`
	// Results has one entry per container, in command order.
	Results []ContainerResult `json:"results"`
}

// EventType implements Data.
func (NodeUpdateCompleted) EventType() string { return TypeNodeUpdateCompleted }

// NodeUpdateFailed says a node command stopped on a container that could not be updated.
type NodeUpdateFailed struct {
	// Wave is the wave of the command.
	Wave int `json:"wave"`
	// Rollback echoes the command's flag.
	Rollback bool `json:"rollback,omitempty"`
	// Container is the container that failed.
	Container string `json:"container"`
	// Step is the step that failed.
	Step string `json:"step"`
	// Error is the engine's or health gate's error.
	Error string `json:"error"`
	// Results are the containers handled before and including the failure.
	Results []ContainerResult `json:"results"`
}

// EventType implements Data.
func (NodeUpdateFailed) EventType() string { return TypeNodeUpdateFailed }

// NodeHeartbeat says a node-updater is alive.
type NodeHeartbeat struct {
	// AgentVersion is the node-updater's version.
	AgentVersion string `json:"agent_version"`
	// Runtime is docker or sim.
	Runtime string `json:"runtime"`
	// Containers counts the containers the node-updater owns.
	Containers int `json:"containers"`
}

// EventType implements Data.
func (NodeHeartbeat) EventType() string { return TypeNodeHeartbeat }

// MigrationRequested asks the migrator to migrate a database.
type MigrationRequested struct {
	// Service owns the database.
	Service string `json:"service,omitempty"`
	// Driver is sqlite, postgres, or mysql (MariaDB or MySQL; mariadb is the same driver).
	Driver string `json:"driver" jsonschema:"enum=sqlite,enum=postgres,enum=mysql,enum=mariadb"`
	// Database is the database location: a file path for sqlite, a URL for postgres or mysql.
	Database string `json:"database" jsonschema:"minLength=1"`
	// DatabaseID names the database in the migrator's allow-list (migrator --databases; the planner sends the service's name). A migrator with an allow-list migrates only the location configured under this id, never Database, and refuses an id it does not know.
	DatabaseID string `json:"database_id,omitempty"`
	// Source is the migrations directory (SQL files); required unless Command is set.
	Source string `json:"source,omitempty"`
	// TargetVersion is the version to reach; 0 means the latest in the source.
	TargetVersion uint `json:"target_version,omitempty"`
	// Phase is expand, contract or all (default); migrate is the middle phase of a command migration (keystone-manage db_sync --migrate), run after the roll.
	Phase string `json:"phase,omitempty" jsonschema:"enum=expand,enum=migrate,enum=contract,enum=all"`
	// Recover allows a dirty database to be recovered instead of refused: the snapshot taken by the run that left it dirty (recorded in the database's ledger) is restored, unless writes committed after that snapshot are counted (then the request is refused with their counts, see RestoreAnyway).
	Recover bool `json:"recover,omitempty"`
	// RestoreAnyway lets a restore go ahead although writes committed after its snapshot were counted (they are lost; the replaced state is kept as a snapshot of its own). Without it the migrator keeps the database (clean at the last version applied, when the failed file rolled back) or leaves it paused, and publishes the counts and the choices.
	RestoreAnyway bool `json:"restore_anyway,omitempty"`
	// SnapshotMethod chooses how the database is copied before it changes. PostgreSQL: auto (default: CREATE DATABASE ... TEMPLATE when no other session is connected, pg_dump when one is; nobody is disconnected), template (always TEMPLATE: fastest, but the database's sessions are terminated for the length of the copy) or dump (always pg_dump). MariaDB/MySQL: auto (default: backup for a database above 512 MiB where backup can run, dump otherwise), dump (mariadb-dump --single-transaction, restored by reloading it) or backup (mariadb-backup --no-lock, restored by IMPORT TABLESPACE: about a file copy's time both ways; the migrator must run on the server's machine with access to its data directory, every table InnoDB). SQLite has one method and refuses another.
	SnapshotMethod string `json:"snapshot_method,omitempty" jsonschema:"enum=auto,enum=template,enum=dump,enum=backup"`
	// Fence stops the writes of others for the run, so none can land after the snapshot: connect (PostgreSQL: CONNECT revoked from every role but the migrator's and their sessions terminated until the run ends; an outage for them, by choice), read-only (PostgreSQL: default_transaction_read_only set on the database for every role but the migrator's and their open sessions terminated: they reconnect and read, their writes fail until the run ends) or none (default). Other drivers refuse a fence.
	Fence string `json:"fence,omitempty" jsonschema:"enum=none,enum=connect,enum=read-only"`
	// Command, instead of Source, migrates by running a command in a one-off container from the service's new image, as Kolla's bootstrap containers do (keystone-manage db_sync, nova-manage db sync).
	Command *MigrationCommand `json:"command,omitempty"`
}

// MigrationCommand is a migration run as a command in a one-off container.
type MigrationCommand struct {
	// Image is the service's new image, by tag or digest.
	Image string `json:"image" jsonschema:"minLength=1"`
	// Command is the command run, e.g. ["keystone-manage", "db_sync", "--expand"]; it replaces the image's CMD (its ENTRYPOINT stays unless Entrypoint is set).
	Command []string `json:"command" jsonschema:"minItems=1"`
	// Entrypoint replaces the image's ENTRYPOINT when set.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Env is KEY=VALUE pairs added to the image's environment; KOLLA_BOOTSTRAP= is added unless Env names it or sets NoBootstrapEnv. Values of keys that look secret (PASSWORD, SECRET, TOKEN, KEY) never reach a log or an event.
	Env []string `json:"env,omitempty"`
	// NoBootstrapEnv leaves KOLLA_BOOTSTRAP out (for images that are not Kolla's).
	NoBootstrapEnv bool `json:"no_bootstrap_env,omitempty"`
	// Mounts are the service's config mounts, host-path:container-path[:ro].
	Mounts []string `json:"mounts,omitempty"`
	// Network is the Docker network the container joins (e.g. host, as Kolla runs), default the engine's bridge.
	Network string `json:"network,omitempty"`
	// TimeoutSeconds bounds one run; past it the container is killed and the migration fails (default 600).
	TimeoutSeconds int `json:"timeout_seconds,omitempty" jsonschema:"minimum=0"`
	// VersionCommand prints the database's schema version (nova-manage db version, alembic current); without it the migrator reads a fingerprint of the schema.
	VersionCommand []string `json:"version_command,omitempty"`
	// Repeat runs Command again while it exits 1 (more work), until it exits 0 (done); 2 or more is an error: nova-manage db online_data_migrations.
	Repeat bool `json:"repeat,omitempty"`
}

// Validate checks what the schema cannot: a source or a command, not both.
func (r MigrationRequested) Validate() error {
	switch {
	case r.Source == "" && r.Command == nil:
		return &FieldError{Field: "data.source", Reason: "is missing; give the migrations directory, or a command to run in the new image (data.command)"}
	case r.Source != "" && r.Command != nil:
		return &FieldError{Field: "data.command", Reason: "is set together with data.source; a migration is either SQL files or a command, send one"}
	case r.Phase == "migrate" && r.Command == nil:
		return &FieldError{Field: "data.phase", Reason: "migrate is a phase of command migrations; SQL file sets have expand and contract only"}
	}
	return nil
}

// EventType implements Data.
func (MigrationRequested) EventType() string { return TypeMigrationRequested }

// CommandResult is what a command migration's container did.
type CommandResult struct {
	// ExitCode is the last run's exit code (-1 when it was killed at the timeout).
	ExitCode int `json:"exit_code"`
	// TimedOut reports that the last run was killed at the timeout.
	TimedOut bool `json:"timed_out,omitempty"`
	// Runs counts the runs (more than one for a repeated command).
	Runs int `json:"runs,omitempty"`
	// LogTail is the last lines of the last run's output, secrets redacted.
	LogTail []string `json:"log_tail,omitempty"`
	// FromSchema is the schema before: the version command's output, or sha256:<fingerprint>.
	FromSchema string `json:"from_schema,omitempty"`
	// ToSchema is the schema after, read the same way.
	ToSchema string `json:"to_schema,omitempty"`
}

// MigrationStarted says a snapshot exists and migrations begin.
type MigrationStarted struct {
	// Database is the database location, credentials removed.
	Database string `json:"database"`
	// FromVersion is the version before.
	FromVersion uint `json:"from_version"`
	// SnapshotID names the snapshot taken before any change.
	SnapshotID string `json:"snapshot_id"`
}

// EventType implements Data.
func (MigrationStarted) EventType() string { return TypeMigrationStarted }

// MigrationCompleted says the database reached its target version.
type MigrationCompleted struct {
	// Database is the database location, credentials removed.
	Database string `json:"database"`
	// FromVersion is the version before.
	FromVersion uint `json:"from_version"`
	// ToVersion is the version now.
	ToVersion uint `json:"to_version"`
	// SnapshotID names the snapshot taken before any change.
	SnapshotID string `json:"snapshot_id,omitempty"`
	// DurationMs is the time taken, snapshot included.
	DurationMs int64 `json:"duration_ms"`
	// Command is what the container of a command migration did.
	Command *CommandResult `json:"command,omitempty"`
	// Recovered (requests with recover) describes the snapshot restored to clear the dirty state before migrating: its id, version and time, and what the restore took out.
	Recovered *SnapshotRestore `json:"recovered,omitempty"`
}

// EventType implements Data.
func (MigrationCompleted) EventType() string { return TypeMigrationCompleted }

// MigrationFailed says a migration failed and what state the database is in now.
type MigrationFailed struct {
	// Database is the database location, credentials removed.
	Database string `json:"database"`
	// File is the migration file that failed, when one did.
	File string `json:"file,omitempty"`
	// Error is the database's or the check's error.
	Error string `json:"error"`
	// Version is the database version now.
	Version uint `json:"version"`
	// State describes the database now, e.g. "clean at version 3 (restored from snapshot)".
	State string `json:"state"`
	// Command is what the container of a failed command migration did.
	Command *CommandResult `json:"command,omitempty"`
	// Restore describes the snapshot restored after the failure (restored true) or, when writes committed after it were counted, the one not restored: its id, version and time, and the writes a restore takes out.
	Restore *SnapshotRestore `json:"restore,omitempty"`
	// Choices lists what the operator can do next when the migrator kept the database instead of restoring it, or left it paused (dirty), each a complete instruction.
	Choices []string `json:"choices,omitempty"`
}

// SnapshotRestore describes a snapshot restored, or offered for a restore, and what the restore takes out.
type SnapshotRestore struct {
	// SnapshotID names the snapshot.
	SnapshotID string `json:"snapshot_id"`
	// Version is the migration version the snapshot holds.
	Version uint `json:"version"`
	// Taken is when the snapshot was taken.
	Taken time.Time `json:"taken"`
	// Restored reports whether the snapshot was restored (false: offered, not restored).
	Restored bool `json:"restored"`
	// WritesCounted reports whether the writes after the snapshot could be counted; when false, CountError says why and nothing is known of them.
	WritesCounted bool `json:"writes_counted"`
	// CountError says why the writes could not be counted.
	CountError string `json:"count_error,omitempty"`
	// Writes counts, per table, the rows inserted, updated and deleted after the snapshot by applications (PostgreSQL: pg_stat_user_tables counters; SQLite and MariaDB: row comparisons): the writes of the migrator's own fenced runs after the snapshot (fence connect or read-only: no other writer could write while they ran), from each run's start to the moment it finished, are left out; those of any other run (unfenced, a command, a down run) are counted, and migration_writes_included says so. Tables without writes are left out.
	Writes []TableWrites `json:"writes_after_snapshot,omitempty"`
	// MigrationWritesIncluded reports that the counts include the writes of the migrator's own runs, with whatever applications wrote: a run after the snapshot was not fenced (applications could write while it ran) or did not finish cleanly, so its writes could not be told from the applications'. A restore anyway loses both; to have a data migration rolled back without this, run it fenced.
	MigrationWritesIncluded bool `json:"migration_writes_included,omitempty"`
	// Lost says in words what a restore of the snapshot takes out (restored) or would take out (not restored).
	Lost string `json:"lost"`
}

// TableWrites counts the rows of one table written after a snapshot.
type TableWrites struct {
	// Table is the table (schema.table on PostgreSQL).
	Table string `json:"table"`
	// Inserts counts the rows inserted.
	Inserts int64 `json:"inserts"`
	// Updates counts the rows updated.
	Updates int64 `json:"updates"`
	// Deletes counts the rows deleted.
	Deletes int64 `json:"deletes"`
}

// EventType implements Data.
func (MigrationFailed) EventType() string { return TypeMigrationFailed }

// MigrationRollbackRequested asks the migrator to take a database back down.
type MigrationRollbackRequested struct {
	// Driver is sqlite, postgres, or mysql (MariaDB or MySQL; mariadb is the same driver).
	Driver string `json:"driver" jsonschema:"enum=sqlite,enum=postgres,enum=mysql,enum=mariadb"`
	// Database is the database location.
	Database string `json:"database" jsonschema:"minLength=1"`
	// DatabaseID names the database in the migrator's allow-list, as in migration.requested.
	DatabaseID string `json:"database_id,omitempty"`
	// Source is the migrations directory with the down files.
	Source string `json:"source,omitempty"`
	// ToVersion is the version to return to.
	ToVersion uint `json:"to_version"`
	// SnapshotID names the snapshot to restore when down migrations cannot be used, or past a contract migration (required there). With no source, it asks for that restore even when the version did not move (a database migrated by commands).
	SnapshotID string `json:"snapshot_id,omitempty"`
	// RestoreAnyway lets the snapshot be restored although writes committed after it were counted (they are lost); without it such a rollback is refused with their counts.
	RestoreAnyway bool `json:"restore_anyway,omitempty"`
}

// EventType implements Data.
func (MigrationRollbackRequested) EventType() string { return TypeMigrationRollbackRequested }

// MigrationRollbackCompleted says the database is back at its earlier version.
type MigrationRollbackCompleted struct {
	// Database is the database location, credentials removed.
	Database string `json:"database"`
	// Path is down (down migrations) or snapshot (restored).
	Path string `json:"path" jsonschema:"enum=down,enum=snapshot"`
	// FromVersion is the version before.
	FromVersion uint `json:"from_version"`
	// ToVersion is the version now.
	ToVersion uint `json:"to_version"`
	// SnapshotTime is when the restored snapshot was taken (snapshot path only).
	SnapshotTime *time.Time `json:"snapshot_time,omitempty"`
	// RowsWrittenAfterSnapshot (snapshot path only) counts the writes (rows inserted, updated and deleted, the sum over Restore.writes_after_snapshot) committed by applications after the snapshot that the restore took out; the migration's own writes are left out only for fenced runs; otherwise they are counted and Restore.migration_writes_included says so. Absent when they could not be counted. The replaced state itself is kept as a snapshot of its own when it can be.
	RowsWrittenAfterSnapshot *int64 `json:"rows_written_after_snapshot,omitempty"`
	// CountedTables (snapshot path only) lists the tables whose writes were counted (schema.table on PostgreSQL).
	CountedTables []string `json:"counted_tables,omitempty"`
	// UncountedTables (snapshot path only) lists the tables whose writes could not be counted, migration bookkeeping aside.
	UncountedTables []string `json:"uncounted_tables,omitempty"`
	// Restore (snapshot path only) describes the snapshot restored: its id, version and time, and the writes after it that the restore took out, per table.
	Restore *SnapshotRestore `json:"restore,omitempty"`
}

// EventType implements Data.
func (MigrationRollbackCompleted) EventType() string { return TypeMigrationRollbackCompleted }

// MigrationStatusRequested asks the migrator for a database's migration state and snapshots (cutover db status, cutover db snapshots).
type MigrationStatusRequested struct {
	// Driver is sqlite, postgres, or mysql (MariaDB or MySQL; mariadb is the same driver).
	Driver string `json:"driver" jsonschema:"enum=sqlite,enum=postgres,enum=mysql,enum=mariadb"`
	// Database is the database location: a file path for sqlite, a URL for postgres or mysql.
	Database string `json:"database" jsonschema:"minLength=1"`
	// Source is the migrations directory, to list the pending files and check the source against the database's ledger; optional.
	Source string `json:"source,omitempty"`
	// DatabaseID names the database in the migrator's allow-list, as in migration.requested.
	DatabaseID string `json:"database_id,omitempty"`
}

// EventType implements Data.
func (MigrationStatusRequested) EventType() string { return TypeMigrationStatusRequested }

// MigrationStatusReported answers a MigrationStatusRequested.
type MigrationStatusReported struct {
	// Database is the database location, credentials removed.
	Database string `json:"database"`
	// Error says why the state could not be read; the other fields are then empty.
	Error string `json:"error,omitempty"`
	// Version is the version golang-migrate recorded.
	Version uint `json:"version"`
	// Dirty reports that a migration stopped midway.
	Dirty bool `json:"dirty"`
	// Applied counts the files in the database's ledger.
	Applied int `json:"applied"`
	// Latest is the last version of the source (with a source).
	Latest uint `json:"latest,omitempty"`
	// Pending lists the up files of the source after the current version (with a source).
	Pending []string `json:"pending,omitempty"`
	// Problems lists what the migrator would refuse in the source before running anything (with a source).
	Problems []string `json:"problems,omitempty"`
	// Run is the run recorded in the ledger as in progress: the run that left a dirty database dirty, whose snapshot recover restores.
	Run *MigrationRun `json:"run,omitempty"`
	// Snapshots lists the database's snapshots, newest first.
	Snapshots []SnapshotInfo `json:"snapshots,omitempty"`
}

// EventType implements Data.
func (MigrationStatusReported) EventType() string { return TypeMigrationStatusReported }

// MigrationRun is a migration run recorded in a database's ledger.
type MigrationRun struct {
	// ID is the request that started it.
	ID string `json:"id"`
	// SnapshotID is the snapshot taken just before it.
	SnapshotID string `json:"snapshot_id"`
	// FromVersion is the version it started from.
	FromVersion uint `json:"from_version"`
	// TargetVersion is the version it went to.
	TargetVersion uint `json:"target_version"`
	// Started is when it started.
	Started time.Time `json:"started"`
}

// SnapshotInfo describes one snapshot of a database.
type SnapshotInfo struct {
	// ID names the snapshot.
	ID string `json:"id"`
	// Version is the migration version it holds (0 when it could not be read).
	Version uint `json:"version"`
	// Dirty reports that the database was dirty when it was taken.
	Dirty bool `json:"dirty,omitempty"`
	// Taken is when it was taken.
	Taken time.Time `json:"taken"`
	// Location is where it is kept.
	Location string `json:"location"`
}

// HealthSignal is one observation of a service's health, from a probe or a monitor.
type HealthSignal struct {
	// Service is the service observed.
	Service string `json:"service" jsonschema:"minLength=1"`
	// Node is the node observed, when the signal is per node.
	Node string `json:"node,omitempty"`
	// Container is the container observed, when the signal is per container.
	Container string `json:"container,omitempty"`
	// Check names the check, e.g. "http /healthz".
	Check string `json:"check,omitempty"`
	// Status is pass or fail.
	Status string `json:"status" jsonschema:"enum=pass,enum=fail"`
	// Message is free text from the check.
	Message string `json:"message,omitempty"`
}

// EventType implements Data.
func (HealthSignal) EventType() string { return TypeHealthSignal }

// HealthVerdict is the auditor's judgement of a service over a watch window.
type HealthVerdict struct {
	// Service is the service judged.
	Service string `json:"service"`
	// Wave is the wave whose watch window was judged.
	Wave int `json:"wave"`
	// Verdict is healthy, failing or inconclusive.
	Verdict string `json:"verdict" jsonschema:"enum=healthy,enum=failing,enum=inconclusive"`
	// Evidence lists the signals and measurements behind the verdict.
	Evidence []string `json:"evidence"`
}

// EventType implements Data.
func (HealthVerdict) EventType() string { return TypeHealthVerdict }

// RollbackRequested asks the planner to roll an upgrade back.
type RollbackRequested struct {
	// Reason says why.
	Reason string `json:"reason" jsonschema:"minLength=1"`
	// RequestedBy names the person or service that asked.
	RequestedBy string `json:"requested_by,omitempty"`
}

// EventType implements Data.
func (RollbackRequested) EventType() string { return TypeRollbackRequested }

// RollbackCompleted says the planner finished a rollback.
type RollbackCompleted struct {
	// Result is completed or failed.
	Result string `json:"result" jsonschema:"enum=completed,enum=failed"`
	// Nodes are the nodes rolled back.
	Nodes []string `json:"nodes"`
	// Reason is the rollback's reason, or its failure.
	Reason string `json:"reason"`
}

// EventType implements Data.
func (RollbackCompleted) EventType() string { return TypeRollbackCompleted }

// EventRejected says a message was refused and will not be redelivered.
type EventRejected struct {
	// Consumer is the durable consumer that refused it.
	Consumer string `json:"consumer"`
	// Subject is the NATS subject the message came on.
	Subject string `json:"subject"`
	// StreamSequence is the message's sequence in the stream.
	StreamSequence uint64 `json:"stream_sequence"`
	// EventID is the rejected event's id, when it could be read.
	EventID string `json:"event_id,omitempty"`
	// RejectedType is the rejected event's type, when it could be read.
	RejectedType string `json:"event_type,omitempty"`
	// Field names the offending attribute or data field, when one is to blame.
	Field string `json:"field,omitempty"`
	// Reason says what is wrong and how to fix it.
	Reason string `json:"reason"`
	// Payload is the start of the rejected message body, for diagnosis.
	Payload string `json:"payload,omitempty"`
}

// EventType implements Data.
func (EventRejected) EventType() string { return TypeEventRejected }

// Event types added for issue 3 (node-updater: drain acknowledgements).
const (
	TypeContainerDrained = "dev.cutover.container.drained"
)

// Probe types of Probe.Type.
const (
	ProbeHTTP = "http"
	ProbeTCP  = "tcp"
	ProbeExec = "exec"
)

// Probe is a health check the node-updater runs against a new container whose image has no Docker HEALTHCHECK.
type Probe struct {
	// Type is http (GET must answer 2xx or 3xx), tcp (a connection must open) or exec (the command must exit 0 inside the container).
	Type string `json:"type" jsonschema:"enum=http,enum=tcp,enum=exec"`
	// Port is the container port an http or tcp probe connects to, on the container's address in its first network.
	Port int `json:"port,omitempty" jsonschema:"minimum=0,maximum=65535"`
	// Path is the path of an http probe (default /).
	Path string `json:"path,omitempty"`
	// Command is the command an exec probe runs inside the container.
	Command []string `json:"command,omitempty"`
	// TimeoutMs bounds one probe (default 2000).
	TimeoutMs int64 `json:"timeout_ms,omitempty" jsonschema:"minimum=0"`
	// IntervalMs is the pause between probes (default 500).
	IntervalMs int64 `json:"interval_ms,omitempty" jsonschema:"minimum=0"`
}

// ContainerDrained acknowledges a dev.cutover.container.draining event: the load balancer no longer sends traffic to the container. Its causationid is the draining event's id.
type ContainerDrained struct {
	// Container is the container name, as in the draining event.
	Container string `json:"container" jsonschema:"minLength=1"`
	// Agent names the load-balancer agent that took the container out.
	Agent string `json:"agent,omitempty"`
}

// EventType implements Data.
func (ContainerDrained) EventType() string { return TypeContainerDrained }

// Event types added for pull progress (issue 3).
const (
	TypeContainerPulling = "dev.cutover.container.pulling"
)

// ContainerPulling reports a pull in progress, at most twice a second.
type ContainerPulling struct {
	// Container is the container being updated.
	Container string `json:"container"`
	// Image is the reference being pulled.
	Image string `json:"image"`
	// LayersDone counts layers downloaded and extracted, or already present.
	LayersDone int `json:"layers_done"`
	// LayersTotal counts the layers the engine announced so far.
	LayersTotal int `json:"layers_total"`
	// BytesDone and BytesTotal sum the download progress the engine reported per layer.
	BytesDone  int64 `json:"bytes_done,omitempty"`
	BytesTotal int64 `json:"bytes_total,omitempty"`
}

// EventType implements Data.
func (ContainerPulling) EventType() string { return TypeContainerPulling }

// TypeContainerPullRetrying is a failed pull the node-updater tries again.
const TypeContainerPullRetrying = "dev.cutover.container.pull.retrying"

// ContainerPullRetrying says a pull failed and the node-updater tries it again after a wait (capped exponential backoff within the command's deadline), so dashboards and alerts see a registry in trouble before the wave fails. A node-updater publishes one for each of the first four retries of a pull and then only after attempts 8, 16, 32...: a pull retried for a whole long deadline adds a handful of events to the stream, not one per attempt. The image and the error have URL passwords, bearer tokens and password=-style values replaced by REDACTED (package events/redact).
type ContainerPullRetrying struct {
	// Container is the container being updated.
	Container string `json:"container"`
	// Image is the reference being pulled, secrets redacted.
	Image string `json:"image"`
	// Attempt is the attempt that failed, from 1.
	Attempt int `json:"attempt" jsonschema:"minimum=1"`
	// Attempts is how many attempts the node-updater makes at most (its pull attempts setting); fewer when the command's deadline comes first.
	Attempts int `json:"attempts" jsonschema:"minimum=1"`
	// Error is why the attempt failed, as the engine said it, secrets redacted.
	Error string `json:"error"`
	// RetryInMs is the wait before the next attempt.
	RetryInMs int64 `json:"retry_in_ms" jsonschema:"minimum=0"`
}

// EventType implements Data.
func (ContainerPullRetrying) EventType() string { return TypeContainerPullRetrying }

// Event types added for issue 5 (planner: operator control and node drains).
const (
	TypeUpgradeControlRequested = "dev.cutover.upgrade.control.requested"
	TypeNodeDrainRequested      = "dev.cutover.node.drain.requested"
	TypeNodeDrained             = "dev.cutover.node.drained"
)

// Control actions of UpgradeControlRequested.
const (
	ControlPause   = "pause"
	ControlResume  = "resume"
	ControlAbort   = "abort"
	ControlRetry   = "retry"
	ControlPromote = "promote"
)

// UpgradeControlRequested asks the planner to pause, resume, abort, retry or promote an upgrade. The upgradeid extension (or the subject) names the upgrade. The planner answers with dev.cutover.upgrade.control.answered (causationid = this event's id).
type UpgradeControlRequested struct {
	// Action is pause (no new wave after the current one settles), resume (continue a paused upgrade), abort (stop for good, nothing rolled back), retry (start a failed or paused upgrade again from the step that failed) or promote (go on after the canary of a pause_after_canary upgrade).
	Action string `json:"action" jsonschema:"enum=pause,enum=resume,enum=abort,enum=retry,enum=promote"`
	// Reason says why, for the history.
	Reason string `json:"reason,omitempty"`
	// RequestedBy names the person or system that asked.
	RequestedBy string `json:"requested_by,omitempty"`
}

// EventType implements Data.
func (UpgradeControlRequested) EventType() string { return TypeUpgradeControlRequested }

// TypeUpgradeControlAnswered is the planner's answer to an operator's control (issue 19).
const TypeUpgradeControlAnswered = "dev.cutover.upgrade.control.answered"

// UpgradeControlAnswered is the planner's answer to dev.cutover.upgrade.control.requested or dev.cutover.rollback.requested: accepted or refused, and why. Its causationid is the request's id.
type UpgradeControlAnswered struct {
	// Action is the action answered: pause, resume, abort, retry, promote or rollback.
	Action string `json:"action" jsonschema:"minLength=1"`
	// Accepted says the planner acted on the request (or the upgrade already was where it asked).
	Accepted bool `json:"accepted"`
	// Reason says what the planner did, or why it refused, in plain words.
	Reason string `json:"reason" jsonschema:"minLength=1"`
	// Phase is the upgrade's phase after the answer.
	Phase string `json:"phase,omitempty"`
}

// EventType implements Data.
func (UpgradeControlAnswered) EventType() string { return TypeUpgradeControlAnswered }

// NodeDrainRequested asks an external evacuator to move a node's workloads (e.g. live-migrate its VMs) before the planner touches its workload-host containers.
type NodeDrainRequested struct {
	// Wave is the planner's wave index.
	Wave int `json:"wave"`
	// Containers are the workload-host containers that will be restarted once the node is drained.
	Containers []string `json:"containers"`
	// TimeoutMs is how long the planner waits for dev.cutover.node.drained before failure_action applies.
	TimeoutMs int64 `json:"timeout_ms,omitempty" jsonschema:"minimum=0"`
}

// EventType implements Data.
func (NodeDrainRequested) EventType() string { return TypeNodeDrainRequested }

// NodeDrained says a node's workloads were evacuated; its causationid is the drain request's id.
type NodeDrained struct {
	// Evacuator names the tool that drained the node.
	Evacuator string `json:"evacuator,omitempty"`
	// Message is free text, e.g. how many VMs moved.
	Message string `json:"message,omitempty"`
}

// EventType implements Data.
func (NodeDrained) EventType() string { return TypeNodeDrained }
