// Package natsauth derives least-privilege NATS identities from the event
// catalog: one per service and per node, each allowed to publish only the
// event subjects the catalog says its role produces, and to use only the
// JetStream consumers, KV keys and reply inbox its code needs. It renders
// them as a nats-server authorization block of nkey users (`cutover
// nats-config`, `cutover dev`) and writes one nkey seed file per identity.
//
// A client connects as "cutover-<identity>" (events.Connect), so its replies
// arrive on _INBOX.cutover-<identity>.> and nobody else may subscribe there.
package natsauth

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/events"
)

// Roles an identity can have.
const (
	RolePlanner     = "planner"
	RoleMigrator    = "migrator"
	RoleAuditor     = "auditor"
	RoleNodeUpdater = "node-updater"
	RoleLBAgent     = "lb-agent"
	RoleMonitor     = "monitor"
	RoleEvacuator   = "evacuator"
	RoleCLI         = "cli"
)

// producerRoles maps the catalog's Producer text to the roles that publish
// the event. A catalog entry whose producer is missing here fails
// TestEveryCatalogProducerHasARole: a new event type cannot be forgotten.
var producerRoles = map[string][]string{
	"planner":                                []string{RolePlanner},
	"migrator":                               []string{RoleMigrator},
	"node-updater":                           []string{RoleNodeUpdater},
	"auditor":                                []string{RoleAuditor},
	"auditor, user":                          []string{RoleAuditor, RoleCLI},
	"user (cutover CLI or any NATS client)":  []string{RoleCLI},
	"planner, user (cutover db)":             []string{RolePlanner, RoleCLI},
	"node-updater probes, external monitors": []string{RoleMonitor},
	"load-balancer agent":                    []string{RoleLBAgent},
	"evacuator":                              []string{RoleEvacuator},
	// Rejections: every role that consumes through events.Consume.
	"any service": []string{RolePlanner, RoleMigrator, RoleAuditor, RoleNodeUpdater, RoleLBAgent},
}

// ProducerRoles returns the roles that publish events of a catalog entry.
func ProducerRoles(s events.Spec) ([]string, error) {
	roles, ok := producerRoles[s.Producer]
	if !ok {
		return nil, fmt.Errorf("event type %s: producer %q has no role in natsauth; add it to producerRoles", s.Type, s.Producer)
	}
	return roles, nil
}

// Fleet names the identities beyond the fixed services.
type Fleet struct {
	// Nodes get one node-updater identity each (node-updater-<node>).
	Nodes []string
	// LBAgents are lb-agent names (their --name, default lb-agent).
	LBAgents []string
	// Monitors are health monitors, which may publish signals only.
	Monitors []string
	// Evacuators answer drain requests (dev.cutover.node.drained).
	Evacuators []string
}

// Identity is one NATS user of a generated authorization.
type Identity struct {
	// Name is the identity's name; its client connects as cutover-<Name>.
	Name string
	// Role is what the identity is (RolePlanner, RoleNodeUpdater, ...).
	Role string
	// Node is the node of a node-updater.
	Node string
	// Publish and Subscribe are the subjects the server lets it use.
	Publish, Subscribe []string
}

// ClientName is the name the identity's client connects with
// (events.Connect's name), which also names its reply inbox.
func (id Identity) ClientName() string { return "cutover-" + id.Name }

// Identities returns every identity of a fleet, in a stable order: the
// planner, migrator, auditor and CLI, then one per node, lb-agent, monitor
// and evacuator.
func Identities(f Fleet) ([]Identity, error) {
	var errs []error
	check := func(kind string, names []string) {
		seen := map[string]bool{}
		for _, n := range names {
			if err := token(n); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", kind, n, err))
			}
			if seen[n] {
				errs = append(errs, fmt.Errorf("%s %q is named twice", kind, n))
			}
			seen[n] = true
		}
	}
	check("node", f.Nodes)
	check("lb-agent", f.LBAgents)
	check("monitor", f.Monitors)
	check("evacuator", f.Evacuators)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var ids []Identity
	add := func(name, role, node string) {
		ids = append(ids, Identity{Name: name, Role: role, Node: node})
	}
	add("planner", RolePlanner, "")
	add("migrator", RoleMigrator, "")
	add("auditor", RoleAuditor, "")
	add("cli", RoleCLI, "")
	for _, n := range f.Nodes {
		add("node-updater-"+n, RoleNodeUpdater, n)
	}
	for _, n := range f.LBAgents {
		add(n, RoleLBAgent, "")
	}
	for _, n := range f.Monitors {
		add("monitor-"+n, RoleMonitor, "")
	}
	for _, n := range f.Evacuators {
		add("evacuator-"+n, RoleEvacuator, "")
	}
	names := map[string]bool{}
	for i := range ids {
		if names[ids[i].Name] {
			return nil, fmt.Errorf("two identities are named %q; rename the lb-agent", ids[i].Name)
		}
		names[ids[i].Name] = true
		pub, sub, err := permissions(ids[i])
		if err != nil {
			return nil, err
		}
		ids[i].Publish, ids[i].Subscribe = pub, sub
	}
	return ids, nil
}

func token(v string) error {
	if v == "" {
		return errors.New("is empty")
	}
	if strings.ContainsAny(v, ".*> \t\r\n\"'{}[]#") {
		return errors.New("cannot hold . * > quotes, brackets, # or whitespace (it becomes a NATS subject token)")
	}
	return nil
}

// eventSubjects returns the subjects of the events a role publishes, from
// the catalog: {node} becomes the identity's node for a node-updater and *
// for the others, as do {upgrade} and {service}.
func eventSubjects(id Identity) ([]string, error) {
	var out []string
	for _, s := range events.Catalog {
		roles, err := ProducerRoles(s)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(roles, id.Role) {
			continue
		}
		node := "*"
		if id.Role == RoleNodeUpdater {
			node = id.Node
		}
		subj := strings.NewReplacer("{node}", node, "{upgrade}", "*", "{service}", "*").Replace(s.Subject)
		out = append(out, subj)
	}
	return out, nil
}

// JetStream API and KV subjects.
func streamInfo(stream string) string { return "$JS.API.STREAM.INFO." + stream }

// durable is what a named pull consumer needs: create it pinned to its
// filter subject, read its info, pull and ack its messages.
func durable(name, filter string) []string {
	s := events.StreamName
	return []string{
		"$JS.API.CONSUMER.CREATE." + s + "." + name + "." + filter,
		"$JS.API.CONSUMER.INFO." + s + "." + name,
		"$JS.API.CONSUMER.MSG.NEXT." + s + "." + name,
		"$JS.ACK." + s + "." + name + ".>",
	}
}

// ordered is what ordered (ephemeral) consumers on filter need. Their names
// are random, so pulling cannot be pinned: only identities that may read
// every event get them.
func ordered(filter string) []string {
	s := events.StreamName
	return []string{
		"$JS.API.CONSUMER.CREATE." + s + ".*." + filter,
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".*",
		"$JS.API.CONSUMER.DELETE." + s + ".*",
		"$JS.API.CONSUMER.INFO." + s + ".*",
	}
}

// kv is what reading and writing keys matching key in a bucket needs. A
// bucket read from its leader (events.LeaderReads) is read through
// $JS.API.STREAM.MSG.GET, whose subject does not name the key: only an
// identity that may read every key (key ">") gets it.
func kv(bucket, key string, write bool) []string {
	out := []string{
		streamInfo("KV_" + bucket),
		"$JS.API.DIRECT.GET.KV_" + bucket + ".$KV." + bucket + "." + key,
	}
	if events.LeaderReads(bucket) && key == ">" {
		out = append(out, "$JS.API.STREAM.MSG.GET.KV_"+bucket)
	}
	if write {
		out = append(out, "$KV."+bucket+"."+key)
	}
	return out
}

// kvList is what listing a bucket's keys needs (an ordered push consumer on
// the whole bucket).
func kvList(bucket string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE.KV_" + bucket + ".*.$KV." + bucket + ".>",
		"$JS.API.CONSUMER.DELETE.KV_" + bucket + ".*",
		"$JS.FC.KV_" + bucket + ".>",
	}
}

// admin is what creating or updating the stream and buckets needs (Setup):
// given to the planner, migrator, auditor and CLI, so the start order of
// services does not matter; node-updaters, lb-agents and monitors only read
// their info.
func admin() []string {
	out := []string{"$JS.API.INFO"} // creating a bucket reads the account's limits
	for _, s := range append([]string{events.StreamName}, kvStreams()...) {
		out = append(out, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s, streamInfo(s))
	}
	return out
}

func kvStreams() []string {
	return []string{"KV_" + events.BucketNodes, "KV_" + events.BucketUpgrades, "KV_" + events.BucketLocks, "KV_" + events.BucketProcessed}
}

// infoOnly is what Setup needs when it writes nothing.
func infoOnly() []string {
	out := []string{streamInfo(events.StreamName)}
	for _, s := range kvStreams() {
		out = append(out, streamInfo(s))
	}
	return out
}

// consumer is what events.Consume needs besides the durable: the processed
// bucket for its durable's keys and the shared rejection keys.
func consumer(durableName string) []string {
	return append(kv(events.BucketProcessed, durableName+".>", true), kv(events.BucketProcessed, "rejected.>", true)...)
}

func permissions(id Identity) (pub, sub []string, err error) {
	pub, err = eventSubjects(id)
	if err != nil {
		return nil, nil, err
	}
	sub = []string{"_INBOX." + id.ClientName() + ".>"}
	switch id.Role {
	case RolePlanner:
		pub = append(pub, admin()...)
		pub = append(pub, durable("planner", events.SubjectAll)...)
		pub = append(pub, consumer("planner")...)
		pub = append(pub, kv(events.BucketUpgrades, ">", true)...)
		pub = append(pub, kvList(events.BucketUpgrades)...)
		pub = append(pub, kv(events.BucketLocks, ">", true)...)
		pub = append(pub, kv(events.BucketNodes, ">", false)...)
		pub = append(pub, kvList(events.BucketNodes)...)
	case RoleMigrator:
		pub = append(pub, admin()...)
		pub = append(pub, durable("migrator", events.SubjectMigrationCmd)...)
		pub = append(pub, consumer("migrator")...)
		pub = append(pub, kv(events.BucketProcessed, "migrator-outcome.>", true)...)
		pub = append(pub, kv(events.BucketLocks, "migration.>", true)...)
	case RoleAuditor:
		pub = append(pub, admin()...)
		pub = append(pub, durable("auditor", events.SubjectAll)...)
		pub = append(pub, consumer("auditor")...)
		pub = append(pub, ordered(events.SubjectAll)...)              // the health watcher
		pub = append(pub, "$JS.API.CONSUMER.LIST."+events.StreamName) // consumer lag metrics
	case RoleCLI:
		sub = append(sub, events.SubjectAll) // operators watch every event, e.g. nats sub 'cutover.>'
		pub = append(pub, admin()...)
		pub = append(pub, ordered(events.SubjectAll)...)               // cutover watch
		pub = append(pub, "$JS.API.STREAM.MSG.GET."+events.StreamName) // operators read any event
		pub = append(pub, kv(events.BucketUpgrades, ">", false)...)
		pub = append(pub, kvList(events.BucketUpgrades)...)
		pub = append(pub, kv(events.BucketNodes, ">", false)...)
		pub = append(pub, kvList(events.BucketNodes)...)
		pub = append(pub, kv(events.BucketLocks, "upgrade.>", true)...) // cutover locks --release of a stale lock
		pub = append(pub, kvList(events.BucketLocks)...)
	case RoleNodeUpdater:
		name := "node-updater-" + id.Node
		pub = append(pub, infoOnly()...)
		pub = append(pub, durable(name, events.NodeCmdSubject(id.Node))...)
		pub = append(pub, consumer(name)...)
		pub = append(pub, kv(events.BucketNodes, id.Node, true)...)
		sub = append(sub, events.NodeAckSubject(id.Node)) // drain acknowledgements
	case RoleLBAgent:
		pub = append(pub, infoOnly()...)
		pub = append(pub, durable(id.Name, events.SubjectNodeStatusAll)...)
		pub = append(pub, consumer(id.Name)...)
	case RoleEvacuator:
		// Reads drain requests with its own subscription.
		sub = append(sub, events.SubjectNodeDrainAll)
	case RoleMonitor:
		// Publishes signals and nothing else.
	default:
		return nil, nil, fmt.Errorf("identity %s: unknown role %q", id.Name, id.Role)
	}
	return dedupe(pub), dedupe(sub), nil
}

func dedupe(in []string) []string {
	out := slices.Clone(in)
	sort.Strings(out)
	return slices.Compact(out)
}
