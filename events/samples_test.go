package events_test

import (
	"time"

	"github.com/cutover-dev/cutover/events"
)

// samples holds one valid data value per event type; TestSamplesCoverCatalog
// fails when a type is added to the catalog without one.
var samples = []events.Data{
	events.UpgradeRequested{Release: events.Release{Name: "demo-v2", Services: map[string]events.ServiceRelease{"web": {Image: "127.0.0.1:5000/demo/web:v2"}}}, FailureAction: "rollback"},
	events.UpgradePlanned{Release: "demo-v2", Changes: []events.ContainerChange{{Node: "node1", Container: "web-1", Service: "web", FromImage: "web:v1", ToImage: "web:v2", Reason: "image differs"}}, Waves: []events.PlannedWave{{Index: 0, Nodes: []string{"node1"}}}},
	events.UpgradeStarted{Waves: 3},
	events.WaveStarted{Wave: 0, Nodes: []string{"node1"}},
	events.WaveCompleted{Wave: 0, Nodes: []string{"node1"}, Replaced: 1},
	events.UpgradeCompleted{Release: "demo-v2", Replaced: 3, DurationMs: 12000},
	events.UpgradeFailed{Reason: "node1: health", Wave: 0, Node: "node1"},
	events.UpgradePaused{Reason: "operator", Wave: 1},
	events.UpgradeAborted{Reason: "operator", By: "alice"},
	events.NodeUpdateRequested{Wave: 0, Containers: []events.ContainerTarget{{Container: "web-1", Service: "web", Image: "web:v2", Strategy: "stop-first"}}},
	events.ContainerPulled{Container: "web-1", Image: "web:v2", ImageID: "sha256:abc", DurationMs: 20},
	events.ContainerDraining{Container: "web-1", Service: "web"},
	events.ContainerReplaced{Container: "web-1", Result: events.ResultReplaced, FromImage: "web:v1", ToImage: "web:v2", InterruptionMs: 800},
	events.ContainerReverted{Container: "web-1", Step: "health", Reason: "unhealthy", Image: "web:v2", LastLogs: []string{"boom"}},
	events.NodeUpdateCompleted{Wave: 0, Results: []events.ContainerResult{{Container: "web-1", Result: events.ResultReplaced}}},
	events.NodeUpdateFailed{Wave: 0, Container: "web-1", Step: "pull", Error: "not found", Results: []events.ContainerResult{}},
	events.NodeHeartbeat{AgentVersion: "dev", Runtime: "docker", Containers: 2},
	events.MigrationRequested{Driver: "sqlite", Database: "/var/lib/web.db", Source: "/migrations"},
	events.MigrationStarted{Database: "/var/lib/web.db", FromVersion: 3, SnapshotID: "snap-1"},
	events.MigrationCompleted{Database: "/var/lib/web.db", FromVersion: 3, ToVersion: 5, SnapshotID: "snap-1", DurationMs: 40},
	events.MigrationFailed{Database: "/var/lib/web.db", File: "0004_x.up.sql", Error: "syntax error", Version: 3, State: "clean at version 3"},
	events.MigrationRollbackRequested{Driver: "sqlite", Database: "/var/lib/web.db", ToVersion: 3},
	events.MigrationRollbackCompleted{Database: "/var/lib/web.db", Path: "down", FromVersion: 5, ToVersion: 3},
	events.MigrationStatusRequested{Driver: "sqlite", Database: "/var/lib/web.db", Source: "/migrations"},
	events.MigrationStatusReported{Database: "/var/lib/web.db", Version: 3, Applied: 3, Latest: 5, Pending: []string{"0004_x.up.sql", "0005_y.up.sql"},
		Snapshots: []events.SnapshotInfo{{ID: "web.db.snap-1", Version: 3, Taken: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Location: "/var/lib/.cutover-snapshots/web.db.snap-1"}}},
	events.HealthSignal{Service: "web", Node: "node1", Status: "fail", Message: "503"},
	events.HealthVerdict{Service: "web", Wave: 0, Verdict: "failing", Evidence: []string{"3 consecutive failures"}},
	events.RollbackRequested{Reason: "web failing", RequestedBy: "auditor"},
	events.RollbackCompleted{Result: "completed", Nodes: []string{"node1"}, Reason: "web failing"},
	events.EventRejected{Consumer: "planner", Subject: "cutover.upgrade.requested", StreamSequence: 7, Reason: "not JSON"},
	events.ContainerDrained{Container: "web-1", Agent: "haproxy"},
	events.ContainerPulling{Container: "web-1", Image: "web:v2", LayersDone: 1, LayersTotal: 3, BytesDone: 100, BytesTotal: 900},
	events.ContainerPullRetrying{Container: "web-1", Image: "registry.example/web:v2", Attempt: 2, Attempts: 5, Error: `Get "https://registry.example/v2/": dial tcp 10.0.0.9:443: connect: connection refused`, RetryInMs: 2000},
	events.UpgradeControlRequested{Action: events.ControlPause, Reason: "maintenance window ends", RequestedBy: "alice"},
	events.NodeDrainRequested{Wave: 2, Containers: []string{"nova_libvirt"}, TimeoutMs: 600000},
	events.NodeDrained{Evacuator: "evacuate.sh", Message: "3 VMs live-migrated"},
	events.UpgradeControlAnswered{Action: events.ControlResume, Accepted: false, Reason: "refused: the upgrade is running, not paused", Phase: "running"},
}

// sampleEvent builds a sample event with every attribute a subject template may need.
func sampleEvent(d events.Data) events.Event {
	opts := []events.Option{events.WithUpgrade("019a0000-0000-7000-8000-000000000001"), events.WithNode("node1")}
	if hs, ok := d.(events.HealthSignal); ok {
		opts = append(opts, events.WithSubject(hs.Service))
	}
	return events.MustNew(events.Source("test", ""), d, opts...)
}
