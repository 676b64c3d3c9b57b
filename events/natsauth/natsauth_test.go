package natsauth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/events/natstest"
)

// TestEveryCatalogProducerHasARole: a new event type whose producer has no
// role would be publishable by nobody (or forgotten); it fails here.
func TestEveryCatalogProducerHasARole(t *testing.T) {
	for _, s := range events.Catalog {
		if _, err := natsauth.ProducerRoles(s); err != nil {
			t.Error(err)
		}
	}
}

func TestIdentitiesRefuseBadNames(t *testing.T) {
	tests := []struct {
		name  string
		fleet natsauth.Fleet
		want  string
	}{
		{"dot in a node", natsauth.Fleet{Nodes: []string{"a.b"}}, `node "a.b"`},
		{"wildcard", natsauth.Fleet{LBAgents: []string{">"}}, `lb-agent ">"`},
		{"twice", natsauth.Fleet{Nodes: []string{"n1", "n1"}}, "named twice"},
		{"clash with a service", natsauth.Fleet{LBAgents: []string{"planner"}}, `two identities are named "planner"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := natsauth.Identities(tt.fleet)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Identities(%+v) = %v, want an error saying %q", tt.fleet, err, tt.want)
			}
		})
	}
}

// client is one identity's connection, recording the server's permission
// errors.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []string
}

func connect(t *testing.T, s *natstest.Secure, identity string) *client {
	t.Helper()
	cfg := s.Client(identity)
	opts, err := cfg.Options("cutover-" + identity)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{}
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		c.errs = append(c.errs, err.Error())
		c.mu.Unlock()
	}))
	if c.nc, err = nats.Connect(cfg.URL, opts...); err != nil {
		t.Fatalf("connect as %s: %v", identity, err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// violation waits for the server to report a permission violation naming
// subject, and fails the test when none comes.
func (c *client) violation(t *testing.T, what, subject string) {
	t.Helper()
	natstest.Eventually(t, 5*time.Second, what+": a permissions violation for "+subject, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			if strings.Contains(e, "ermissions") && strings.Contains(e, subject) {
				return true
			}
		}
		return false
	})
}

// noViolation fails the test when the server reported any violation.
func (c *client) noViolation(t *testing.T, what string) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("%s: the server refused: %v", what, c.errs)
	}
}

// stored reports whether the stream holds a message with this id.
func stored(t *testing.T, js jetstream.JetStream, subject, id string) bool {
	t.Helper()
	st, err := js.Stream(t.Context(), events.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(t.Context(), subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return m.Header.Get(nats.MsgIdHdr) == id
}

// publish publishes a message on subject through JetStream, with a short
// bound: a refused publish gets no acknowledgement.
func (c *client) publish(t *testing.T, subject, id string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	m := nats.NewMsg(subject)
	m.Header.Set(nats.MsgIdHdr, id)
	m.Data = []byte(`{}`)
	_, err := c.js.PublishMsg(ctx, m)
	return err
}

// TestGeneratedAuthorizationOnARealServer runs a nats-server requiring TLS
// with client certificates and the generated authorization, and proves each
// identity can do what its role needs and nothing the issue forbids. Every
// "may not" has a matching "may" by the identity allowed to, on the same
// server: the refusals come from the permissions, not from the test.
func TestGeneratedAuthorizationOnARealServer(t *testing.T) {
	s := natstest.StartSecure(t, natsauth.Fleet{Nodes: []string{"n1", "n2"}, LBAgents: []string{"lb-agent"}, Monitors: []string{"m1"}})

	// The CLI identity (an admin) sets up the stream and buckets.
	adminNC, adminJS, err := events.Connect(t.Context(), s.Client("cli"), "cutover-cli")
	if err != nil {
		t.Fatalf("the CLI identity connects and sets up the stream: %v", err)
	}
	defer adminNC.Close()

	t.Run("an anonymous client is refused", func(t *testing.T) {
		anon := events.ClientConfig{URL: s.ClientURL(), CAFile: s.CA, CertFile: s.Cert, KeyFile: s.Key}
		if nc, _, err := events.Connect(t.Context(), anon, "cutover-anon"); err == nil {
			nc.Close()
			t.Fatal("a client with a certificate but no nkey was let in")
		}
		noTLS := events.ClientConfig{URL: s.ClientURL(), NKeyFile: s.Client("planner").NKeyFile}
		if nc, _, err := events.Connect(t.Context(), noTLS, "cutover-planner"); err == nil {
			nc.Close()
			t.Fatal("a client without TLS was let in")
		}
	})

	t.Run("node n1 connects and starts with info-only stream rights", func(t *testing.T) {
		nc, _, err := events.Connect(t.Context(), s.Client("node-updater-n1"), "cutover-node-updater-n1")
		if err != nil {
			t.Fatalf("node-updater-n1 cannot start: %v", err)
		}
		nc.Close()
	})

	planner := connect(t, s, "planner")
	n1 := connect(t, s, "node-updater-n1")

	t.Run("node n1 may not subscribe to node n2's commands", func(t *testing.T) {
		if _, err := n1.nc.SubscribeSync(events.NodeCmdSubject("n2")); err != nil {
			t.Fatal(err)
		}
		n1.violation(t, "subscribe", events.NodeCmdSubject("n2"))

		// Nor read them through JetStream: a consumer on n2's subject.
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		_, err := n1.js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{Durable: "node-updater-n2", FilterSubject: events.NodeCmdSubject("n2"), AckPolicy: jetstream.AckExplicitPolicy})
		if err == nil {
			t.Fatal("n1 created a consumer on n2's commands")
		}
		n1.violation(t, "consumer on n2", "$JS.API.CONSUMER.CREATE.CUTOVER.node-updater-n2.cutover.node.n2.cmd")
	})

	t.Run("node n1 may read its own commands", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		own := connect(t, s, "node-updater-n1")
		cons, err := own.js.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{Durable: "node-updater-n1", FilterSubject: events.NodeCmdSubject("n1"), AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("n1 cannot create its own consumer: %v", err)
		}
		if err := planner.publish(t, events.NodeCmdSubject("n1"), "cmd-for-n1"); err != nil {
			t.Fatalf("the planner cannot command n1: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				t.Fatalf("n1 cannot ack its command: %v", err)
			}
			got++
		}
		if got != 1 {
			t.Fatalf("n1 fetched %d commands, want 1 (%v)", got, batch.Error())
		}
		own.noViolation(t, "n1 reading its commands")
	})

	forbiddenForN1 := []struct{ name, subject string }{
		{"a node command for n2", events.NodeCmdSubject("n2")},
		{"a node command for itself", events.NodeCmdSubject("n1")},
		{"an upgrade.requested", events.SubjectUpgradeRequested},
		{"a rollback.requested", events.SubjectRollbackRequest},
		{"a migration command", events.SubjectMigrationCmd},
		{"n2's status", events.NodeStatusSubject("n2")},
	}
	for _, tc := range forbiddenForN1 {
		t.Run("node n1 may not publish "+tc.name, func(t *testing.T) {
			id := "n1-forged-" + strings.ReplaceAll(tc.name, " ", "-")
			if err := n1.publish(t, tc.subject, id); err == nil {
				t.Fatal("the stream acknowledged it")
			}
			n1.violation(t, "publish", tc.subject)
			if stored(t, adminJS, tc.subject, id) {
				t.Fatal("the stream stored it")
			}
		})
	}
	t.Run("node n1 may publish its own status and inventory", func(t *testing.T) {
		n1 := connect(t, s, "node-updater-n1")
		if err := n1.publish(t, events.NodeStatusSubject("n1"), "n1-status"); err != nil {
			t.Fatal(err)
		}
		kv, err := n1.js.KeyValue(t.Context(), events.BucketNodes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(t.Context(), "n1", []byte(`{}`)); err != nil {
			t.Fatalf("n1 cannot write its inventory: %v", err)
		}
		n1.noViolation(t, "n1's own status and inventory")
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		if _, err := kv.Put(ctx, "n2", []byte(`{}`)); err == nil {
			t.Fatal("n1 wrote n2's inventory")
		}
		n1.violation(t, "n2's inventory", "$KV.cutover-nodes.n2")
	})
	t.Run("the planner saves upgrades with compare-and-swap on what it read, the CLI reads them", func(t *testing.T) {
		// cutover-upgrades is read from its leader (events.LeaderReads):
		// through $JS.API.STREAM.MSG.GET, not the direct get.
		p := connect(t, s, "planner")
		kv, err := p.js.KeyValue(t.Context(), events.BucketUpgrades)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Create(t.Context(), "u-auth", []byte("a")); err != nil {
			t.Fatal(err)
		}
		entry, err := kv.Get(t.Context(), "u-auth")
		if err != nil {
			t.Fatalf("the planner cannot read an upgrade: %v", err)
		}
		if _, err := kv.Update(t.Context(), "u-auth", []byte("b"), entry.Revision()); err != nil {
			t.Fatal(err)
		}
		p.noViolation(t, "planner reading and saving an upgrade")
		cli := connect(t, s, "cli")
		ckv, err := cli.js.KeyValue(t.Context(), events.BucketUpgrades)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ckv.Get(t.Context(), "u-auth"); err != nil || string(got.Value()) != "b" {
			t.Fatalf("the CLI read %v, %v; want the saved upgrade", got, err)
		}
		cli.noViolation(t, "CLI reading an upgrade")
	})
	t.Run("only the planner publishes node and migration commands", func(t *testing.T) {
		for _, subj := range []string{events.NodeCmdSubject("n2"), events.SubjectMigrationCmd} {
			if err := planner.publish(t, subj, "planner-"+subj); err != nil {
				t.Fatalf("planner on %s: %v", subj, err)
			}
		}
		planner.noViolation(t, "planner commands")
		for _, who := range []string{"auditor", "migrator", "cli", "lb-agent", "monitor-m1"} {
			c := connect(t, s, who)
			if err := c.publish(t, events.NodeCmdSubject("n2"), who+"-forged-cmd"); err == nil {
				t.Fatalf("%s published a node command", who)
			}
			c.violation(t, who, events.NodeCmdSubject("n2"))
		}
	})
	t.Run("operators and the auditor request upgrades and rollbacks", func(t *testing.T) {
		cli := connect(t, s, "cli")
		for _, subj := range []string{events.SubjectUpgradeRequested, events.SubjectRollbackRequest, events.SubjectUpgradeControl} {
			if err := cli.publish(t, subj, "cli-"+subj); err != nil {
				t.Fatalf("cli on %s: %v", subj, err)
			}
		}
		aud := connect(t, s, "auditor")
		if err := aud.publish(t, events.SubjectRollbackRequest, "auditor-rollback"); err != nil {
			t.Fatalf("auditor rollback: %v", err)
		}
		if err := aud.publish(t, events.SubjectUpgradeRequested, "auditor-upgrade"); err == nil {
			t.Fatal("the auditor requested an upgrade")
		}
		aud.violation(t, "auditor upgrade", events.SubjectUpgradeRequested)
	})
	t.Run("a health monitor publishes signals and nothing else", func(t *testing.T) {
		m := connect(t, s, "monitor-m1")
		if err := m.publish(t, "cutover.health.web.n1", "m1-signal"); err != nil {
			t.Fatalf("monitor signal: %v", err)
		}
		m.noViolation(t, "monitor signal")
		for _, subj := range []string{events.SubjectUpgradeRequested, events.SubjectRollbackRequest, events.SubjectHealthVerdict, events.NodeStatusSubject("n1"), events.NodeAckSubject("n1")} {
			if err := m.publish(t, subj, "m1-forged-"+subj); err == nil {
				t.Fatalf("the monitor published on %s", subj)
			}
			m.violation(t, "monitor", subj)
			if stored(t, adminJS, subj, "m1-forged-"+subj) {
				t.Fatalf("the stream stored the monitor's %s", subj)
			}
		}
		if _, err := m.nc.SubscribeSync(events.SubjectAll); err != nil {
			t.Fatal(err)
		}
		m.violation(t, "monitor subscribe", events.SubjectAll)
	})
	t.Run("nobody reads another identity's replies", func(t *testing.T) {
		if _, err := n1.nc.SubscribeSync("_INBOX.cutover-planner.>"); err != nil {
			t.Fatal(err)
		}
		n1.violation(t, "inbox", "_INBOX.cutover-planner.>")
	})
}

// TestANodeUpdaterStartedFirstWaitsForTheStream: a node-updater may not
// create the stream or the buckets; started before the planner, it waits
// for them instead of failing (services start in any order).
func TestANodeUpdaterStartedFirstWaitsForTheStream(t *testing.T) {
	s := natstest.StartSecure(t, natsauth.Fleet{Nodes: []string{"n1"}})
	done := make(chan error, 1)
	var logs natstest.Logs
	go func() {
		nc, _, err := events.Connect(t.Context(), s.Client("node-updater-n1"), "cutover-node-updater-n1",
			events.WithLogger(logs.Logger()))
		if err == nil {
			nc.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("node-updater-n1 finished before anyone could create the stream: %v", err)
	case <-time.After(time.Second):
	}
	nc, _, err := events.Connect(t.Context(), s.Client("planner"), "cutover-planner")
	if err != nil {
		t.Fatalf("the planner sets up the stream: %v", err)
	}
	defer nc.Close()
	if err := <-done; err != nil {
		t.Fatalf("node-updater-n1 started before the planner: %v", err)
	}
	// Being refused the creation is expected, not an authorization to fix.
	if got := logs.String(); strings.Contains(got, "NATS refused") || !strings.Contains(got, "waiting for a service that may") {
		t.Errorf("node-updater-n1's log warns of a refusal or does not say it waits:\n%s", got)
	}
}
