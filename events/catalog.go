package events

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Spec describes one event type of the contract: where it is published, who
// produces and who consumes it, and its data struct.
type Spec struct {
	// Type is the CloudEvents type.
	Type string
	// Subject is the NATS subject template. {node}, {upgrade} and {service}
	// are filled from the nodeid and upgradeid extensions and the CloudEvents
	// subject attribute.
	Subject string
	// Producer is the service that publishes the event.
	Producer string
	// Consumers are the services that read it.
	Consumers []string
	// Doc says what the event means, in one sentence.
	Doc string
	// New returns a zero value of the data struct.
	New func() Data
	// MaxSize is the largest encoded event of this type, body and headers,
	// that Encode writes and Decode accepts; 0 means MaxEventSize. Types
	// that clients outside cutover publish (health signals, control
	// requests) have a smaller one.
	MaxSize int
	// Strict refuses data fields the struct does not have, naming the
	// nearest known one. Requests are strict, so a typo cannot fall back
	// to a default; status events are not, so a newer cutover may add
	// fields that this one ignores.
	Strict bool
	// TTL, when set, is how long the stream keeps an event of this type
	// (Encode sets the Nats-TTL header): liveness chatter that nothing
	// reads after a while leaves the stream long before its max age.
	TTL time.Duration
}

// SmallEventSize is the MaxSize of the types that clients outside cutover
// publish and whose data is a few fields: 64 KiB.
const SmallEventSize = 64 << 10

// MaxBytes returns the largest encoded event of the type.
func (s Spec) MaxBytes() int {
	if s.MaxSize > 0 {
		return s.MaxSize
	}
	return MaxEventSize
}

// SubjectPattern returns the subjects an event of the type may arrive on:
// its subject template with each {placeholder} as the wildcard *.
func (s Spec) SubjectPattern() string {
	toks := strings.Split(s.Subject, ".")
	for i, t := range toks {
		if strings.HasPrefix(t, "{") {
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

func (s Spec) strict() Spec {
	s.Strict = true
	return s
}

func (s Spec) withMax(n int) Spec {
	s.MaxSize = n
	return s
}

func (s Spec) withTTL(d time.Duration) Spec {
	s.TTL = d
	return s
}

// HeartbeatTTL is how long the stream keeps a node heartbeat: liveness is
// read from the cutover-nodes bucket, and the auditor stores heartbeats
// as they come, so an hour is enough to see a node's recent beats and
// keeps 5,000 nodes' heartbeats near 600,000 messages (docs/architecture.md,
// "Retention").
const HeartbeatTTL = time.Hour

// Subjects of the CUTOVER stream.
const (
	SubjectAll              = "cutover.>"
	SubjectUpgradeRequested = "cutover.upgrade.requested"
	SubjectRollbackRequest  = "cutover.rollback.requested"
	SubjectUpgradeStatusAll = "cutover.upgrade.status.>"
	SubjectNodeStatusAll    = "cutover.node.*.status"
	SubjectNodeHeartbeatAll = "cutover.node.*.heartbeat"
	SubjectMigrationCmd     = "cutover.migration.cmd"
	SubjectMigrationStatus  = "cutover.migration.status"
	SubjectHealthSignals    = "cutover.health.*.*"
	SubjectHealthVerdict    = "cutover.health.verdict"
	SubjectRejected         = "cutover.event.rejected"
)

// NodeCmdSubject is the subject a node-updater reads its commands from.
func NodeCmdSubject(node string) string { return "cutover.node." + node + ".cmd" }

// NodeStatusSubject is the subject a node-updater reports on.
func NodeStatusSubject(node string) string { return "cutover.node." + node + ".status" }

// NodeHeartbeatSubject is the subject of a node-updater's heartbeats: a
// subject of their own, so the stream's per-subject limit bounds a flood of
// them without touching the node's status events.
func NodeHeartbeatSubject(node string) string { return "cutover.node." + node + ".heartbeat" }

// UpgradeStatusSubject is the subject of one upgrade's planner events.
func UpgradeStatusSubject(upgradeID string) string { return "cutover.upgrade.status." + upgradeID }

const (
	planner     = "planner"
	migrator    = "migrator"
	nodeUpdater = "node-updater"
	auditor     = "auditor"
	user        = "user (cutover CLI or any NATS client)"
	// plannerOrUser: the planner during upgrades, an operator (cutover db) otherwise.
	plannerOrUser = "planner, user (cutover db)"
	monitor       = "node-updater probes, external monitors"
)

func spec(typ, subject, producer string, consumers []string, doc string, newData func() Data) Spec {
	return Spec{Type: typ, Subject: subject, Producer: producer, Consumers: consumers, Doc: doc, New: newData}
}

var (
	upgradeStatus = "cutover.upgrade.status.{upgrade}"
	nodeCmd       = "cutover.node.{node}.cmd"
	nodeStatus    = "cutover.node.{node}.status"
	toPlanner     = []string{planner, auditor}
	toAuditor     = []string{auditor}
)

// Catalog lists every event type of the contract. docs/events.md and
// events/schemas/ are generated from it (go generate ./events).
var Catalog = []Spec{
	spec(TypeUpgradeRequested, SubjectUpgradeRequested, user, toPlanner, "Asks for a fleet to be brought to a release.", func() Data { return &UpgradeRequested{} }).strict(),
	spec(TypeUpgradePlanned, upgradeStatus, planner, toAuditor, "The plan: every container that changes, why, and the waves.", func() Data { return &UpgradePlanned{} }),
	spec(TypeUpgradeStarted, upgradeStatus, planner, toAuditor, "Execution of the plan began.", func() Data { return &UpgradeStarted{} }),
	spec(TypeWaveStarted, upgradeStatus, planner, toAuditor, "The node commands of a wave were sent.", func() Data { return &WaveStarted{} }),
	spec(TypeWaveCompleted, upgradeStatus, planner, toAuditor, "Every node of a wave completed.", func() Data { return &WaveCompleted{} }),
	spec(TypeUpgradeCompleted, upgradeStatus, planner, toAuditor, "Every wave completed; the fleet runs the release.", func() Data { return &UpgradeCompleted{} }),
	spec(TypeUpgradeFailed, upgradeStatus, planner, toAuditor, "The upgrade stopped on an error.", func() Data { return &UpgradeFailed{} }),
	spec(TypeUpgradePaused, upgradeStatus, planner, toAuditor, "The upgrade waits for an operator.", func() Data { return &UpgradePaused{} }),
	spec(TypeUpgradeAborted, upgradeStatus, planner, toAuditor, "The upgrade was stopped for good.", func() Data { return &UpgradeAborted{} }),
	spec(TypeNodeUpdateRequested, nodeCmd, planner, []string{nodeUpdater, auditor}, "Commands one node-updater to bring containers to target images, in order.", func() Data { return &NodeUpdateRequested{} }),
	spec(TypeContainerPulled, nodeStatus, nodeUpdater, toAuditor, "A target image is present on the node.", func() Data { return &ContainerPulled{} }),
	spec(TypeContainerDraining, nodeStatus, nodeUpdater, toAuditor, "A container is about to stop; load balancers take it out.", func() Data { return &ContainerDraining{} }),
	spec(TypeContainerReplaced, nodeStatus, nodeUpdater, toAuditor, "A container runs its target image (replaced) or already did (unchanged).", func() Data { return &ContainerReplaced{} }),
	spec(TypeContainerReverted, nodeStatus, nodeUpdater, toAuditor, "A replacement failed; the old container serves again.", func() Data { return &ContainerReverted{} }),
	spec(TypeNodeUpdateCompleted, nodeStatus, nodeUpdater, toPlanner, "Every container of a node command reached its target.", func() Data { return &NodeUpdateCompleted{} }),
	spec(TypeNodeUpdateFailed, nodeStatus, nodeUpdater, toPlanner, "A node command stopped on a container it could not update.", func() Data { return &NodeUpdateFailed{} }),
	spec(TypeNodeHeartbeat, "cutover.node.{node}.heartbeat", nodeUpdater, toAuditor, "A node-updater is alive. The stream keeps it an hour (Nats-TTL).", func() Data { return &NodeHeartbeat{} }).withTTL(HeartbeatTTL),
	spec(TypeMigrationRequested, SubjectMigrationCmd, plannerOrUser, []string{migrator, auditor}, "Asks for a database to be migrated, after a snapshot: SQL files (source), or a command run by the migrator in a one-off container from the service's new image on the Docker engine it was started with (migrator --docker), as Kolla's bootstrap containers run db_sync. The command's image is checked for the program before any snapshot; on a non-zero exit, or past timeout_seconds (killed), the snapshot is restored while the service's running containers keep serving; with repeat, exit 1 means more work and runs again (at most 100 runs), 0 done, 2 or more an error.", func() Data { return &MigrationRequested{} }).strict(),
	spec(TypeMigrationStarted, SubjectMigrationStatus, migrator, toAuditor, "A snapshot exists and migrations begin.", func() Data { return &MigrationStarted{} }),
	spec(TypeMigrationCompleted, SubjectMigrationStatus, migrator, toPlanner, "The database reached its target version.", func() Data { return &MigrationCompleted{} }),
	spec(TypeMigrationFailed, SubjectMigrationStatus, migrator, toPlanner, "A migration failed; says what state the database is in now.", func() Data { return &MigrationFailed{} }),
	spec(TypeMigrationRollbackRequested, SubjectMigrationCmd, plannerOrUser, []string{migrator, auditor}, "Asks for a database to be taken back down.", func() Data { return &MigrationRollbackRequested{} }).strict(),
	spec(TypeMigrationRollbackCompleted, SubjectMigrationStatus, migrator, toPlanner, "The database is back at its earlier version.", func() Data { return &MigrationRollbackCompleted{} }),
	spec(TypeMigrationStatusRequested, SubjectMigrationCmd, user, []string{migrator, auditor}, "Asks for a database's migration state and snapshots (cutover db status|snapshots).", func() Data { return &MigrationStatusRequested{} }).strict(),
	spec(TypeMigrationStatusReported, SubjectMigrationStatus, migrator, toAuditor, "A database's migration state and snapshots.", func() Data { return &MigrationStatusReported{} }),
	spec(TypeHealthSignal, "cutover.health.{service}.{node}", monitor, toAuditor, "One observation of a service's health.", func() Data { return &HealthSignal{} }).withMax(SmallEventSize),
	spec(TypeHealthVerdict, SubjectHealthVerdict, auditor, toPlanner, "The auditor's judgement of a service over a watch window.", func() Data { return &HealthVerdict{} }),
	spec(TypeRollbackRequested, SubjectRollbackRequest, "auditor, user", toPlanner, "Asks for an upgrade to be rolled back.", func() Data { return &RollbackRequested{} }).withMax(SmallEventSize).strict(),
	spec(TypeRollbackCompleted, upgradeStatus, planner, toAuditor, "A rollback finished or failed.", func() Data { return &RollbackCompleted{} }),
	spec(TypeEventRejected, SubjectRejected, "any service", toAuditor, "A message was refused (names the field or reason) and will not be redelivered.", func() Data { return &EventRejected{} }),
	spec(TypeContainerDrained, "cutover.node.{node}.ack", "load-balancer agent", []string{nodeUpdater, auditor}, "A load balancer took a draining container out; the node-updater may stop it.", func() Data { return &ContainerDrained{} }).withMax(SmallEventSize),
	spec(TypeContainerPulling, nodeStatus, nodeUpdater, toAuditor, "A pull in progress: layers and bytes done so far.", func() Data { return &ContainerPulling{} }),
	spec(TypeContainerPullRetrying, nodeStatus, nodeUpdater, toAuditor, "A pull failed and will be tried again after a wait: which attempt, why, and when the next one starts. At most the first four retries of a pull and then those after attempts 8, 16, 32... are published.", func() Data { return &ContainerPullRetrying{} }).withMax(SmallEventSize),
	spec(TypeUpgradeControlRequested, SubjectUpgradeControl, user, toPlanner, "Asks the planner to pause, resume, abort, retry or promote an upgrade.", func() Data { return &UpgradeControlRequested{} }).withMax(SmallEventSize).strict(),
	spec(TypeNodeDrainRequested, "cutover.node.{node}.drain", planner, []string{"evacuator", auditor}, "Asks an external evacuator to move a node's workloads before its workload hosts are restarted.", func() Data { return &NodeDrainRequested{} }),
	spec(TypeNodeDrained, "cutover.node.{node}.drain", "evacuator", toPlanner, "A node's workloads were evacuated; its workload hosts may restart.", func() Data { return &NodeDrained{} }).withMax(SmallEventSize),
	spec(TypeUpgradeControlAnswered, upgradeStatus, planner, []string{"cutover CLI", auditor}, "The planner's answer to a control or rollback request: accepted or refused, and why.", func() Data { return &UpgradeControlAnswered{} }).withMax(SmallEventSize),
}

var catalogByType = func() map[string]Spec {
	m := make(map[string]Spec, len(Catalog))
	for _, s := range Catalog {
		m[s.Type] = s
	}
	return m
}()

// Lookup returns the spec of an event type.
func Lookup(typ string) (Spec, bool) {
	s, ok := catalogByType[typ]
	return s, ok
}

// KnownTypes returns every event type, sorted.
func KnownTypes() []string {
	out := make([]string, 0, len(Catalog))
	for _, s := range Catalog {
		out = append(out, s.Type)
	}
	sort.Strings(out)
	return out
}

// subjectFor fills a spec's subject template from the event's attributes.
func subjectFor(s Spec, node, upgrade, service string) (string, error) {
	subj := s.Subject
	for _, tok := range []struct{ name, value, field string }{
		{"{node}", node, "nodeid"},
		{"{upgrade}", upgrade, "upgradeid"},
		{"{service}", service, "subject"},
	} {
		if !strings.Contains(subj, tok.name) {
			continue
		}
		if err := validToken(tok.value); err != nil {
			return "", &FieldError{Field: tok.field, Reason: fmt.Sprintf("%v; %s events are published on %s", err, s.Type, s.Subject)}
		}
		subj = strings.ReplaceAll(subj, tok.name, tok.value)
	}
	return subj, nil
}

// CheckSubject checks that an event may arrive on the NATS subject it came
// on: the subject matches its type's pattern, and each token that stands for
// an attribute (node, upgrade, service) equals that attribute when the
// event carries it. Without it, anyone allowed to publish health signals
// could start an upgrade by publishing a request on a health subject.
func CheckSubject(e Event, subject string) error {
	s, ok := Lookup(e.Type())
	if !ok {
		return unknownType(e.Type())
	}
	wrong := func() error {
		return &FieldError{Field: "type", Reason: fmt.Sprintf("%s events arrive on %s, not on %s; publish it on its own subject (docs/events.md)", e.Type(), s.SubjectPattern(), Clip(subject, MaxAttributeLen))}
	}
	// Token by token, without splitting (this runs for every message).
	tmpl, got := s.Subject, subject
	for tmpl != "" {
		if got == "" {
			return wrong()
		}
		var t, g string
		t, tmpl, _ = strings.Cut(tmpl, ".")
		g, got, _ = strings.Cut(got, ".")
		var attr, field string
		switch t {
		case "{node}":
			attr, field = NodeID(e), ExtNodeID
		case "{upgrade}":
			attr, field = UpgradeID(e), ExtUpgradeID
		case "{service}":
			attr, field = e.Subject(), "subject"
		default:
			if g != t {
				return wrong()
			}
			continue
		}
		if attr != "" && attr != g {
			return &FieldError{Field: field, Reason: fmt.Sprintf("is %q but the event came on %s; %s events carry it in their subject (%s)", attr, Clip(subject, MaxAttributeLen), e.Type(), s.Subject)}
		}
	}
	if got != "" || strings.HasSuffix(subject, ".") {
		return wrong()
	}
	return nil
}

// validToken checks that a value can be one token of a NATS subject.
func validToken(v string) error {
	if v == "" {
		return fmt.Errorf("is empty")
	}
	if strings.ContainsAny(v, ".*> \t\r\n") {
		return fmt.Errorf("%q contains one of . * > or whitespace, which a subject token cannot hold", v)
	}
	return nil
}

// NodeAckSubject is the subject load-balancer agents acknowledge a node's drains on (dev.cutover.container.drained).
func NodeAckSubject(node string) string { return "cutover.node." + node + ".ack" }

// SubjectUpgradeControl is the subject of dev.cutover.upgrade.control.requested.
const SubjectUpgradeControl = "cutover.upgrade.control"

// SubjectNodeDrainAll matches every node's drain requests and answers.
const SubjectNodeDrainAll = "cutover.node.*.drain"

// NodeDrainSubject is the subject of a node's drain requests and answers.
func NodeDrainSubject(node string) string { return "cutover.node." + node + ".drain" }
