package events_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
	"github.com/cutover-dev/cutover/events/natstest"
)

// bareServer starts a server with no stream or bucket and returns its URL.
func bareServer(t *testing.T) string {
	t.Helper()
	s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// rawJS connects a plain JetStream client, closed at the end of the test.
func rawJS(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config
}

// TestSetupNeverResetsWhatAnOperatorSet: an operator sized the stream with
// `nats stream edit`; every service start (default or other settings) must
// keep it. Before, each start put max bytes, max message size and max
// messages per subject back to unlimited.
func TestSetupNeverResetsWhatAnOperatorSet(t *testing.T) {
	s := natstest.Start(t)
	cfg := streamInfo(t, s.JS, events.StreamName)
	cfg.MaxBytes = 1 << 30
	cfg.MaxMsgSize = 512 << 10
	cfg.MaxMsgsPerSubject = 5000
	cfg.MaxAge = time.Hour
	if _, err := s.JS.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, setup := range []events.SetupConfig{{}, {}, {MaxAge: 2 * time.Hour, MaxBytes: 5 << 30, MaxMsgsPerSubject: 7}} {
		if err := events.Setup(t.Context(), s.JS, setup); err != nil {
			t.Fatal(err)
		}
	}
	got := streamInfo(t, s.JS, events.StreamName)
	if got.MaxBytes != 1<<30 || got.MaxMsgSize != 512<<10 || got.MaxMsgsPerSubject != 5000 || got.MaxAge != time.Hour || got.Replicas != 1 {
		t.Errorf("after service starts: max bytes %d, max msg size %d, max msgs per subject %d, max age %v, replicas %d; want the operator's 1GiB, 512KiB, 5000, 1h, 1",
			got.MaxBytes, got.MaxMsgSize, got.MaxMsgsPerSubject, got.MaxAge, got.Replicas)
	}
}

// TestSetupLogsDifferencesOnce: a start that finds an operator's settings
// says once which differ from its own, and keeps them.
func TestSetupLogsDifferencesOnce(t *testing.T) {
	s := natstest.Start(t)
	cfg := streamInfo(t, s.JS, events.StreamName)
	cfg.MaxBytes = 1 << 30
	if _, err := s.JS.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	var logs natstest.Logs
	if err := events.Setup(t.Context(), s.JS, events.SetupConfig{Logger: logs.Logger()}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if n := strings.Count(out, "stream keeps its own settings"); n != 1 {
		t.Fatalf("logged the differences %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, `max_bytes="have 1073741824, default 10737418240"`) || strings.Contains(out, "max_age") {
		t.Errorf("the log line should name max_bytes only:\n%s", out)
	}
}

// TestSetupAddsWhatIsMissing: a stream and buckets made by an older cutover
// (no per-message TTL, no limits, a bucket missing) get what is missing and
// keep the rest.
func TestSetupAddsWhatIsMissing(t *testing.T) {
	s := natstest.Start(t)
	old := streamInfo(t, s.JS, events.StreamName)
	if err := s.JS.DeleteStream(t.Context(), events.StreamName); err != nil {
		t.Fatal(err)
	}
	old.AllowMsgTTL = false
	old.MaxBytes, old.MaxMsgSize, old.MaxMsgsPerSubject = -1, -1, -1
	if _, err := s.JS.CreateStream(t.Context(), old); err != nil {
		t.Fatal(err)
	}
	if err := s.JS.DeleteKeyValue(t.Context(), events.BucketLocks); err != nil {
		t.Fatal(err)
	}
	if err := events.Setup(t.Context(), s.JS, events.SetupConfig{}); err != nil {
		t.Fatal(err)
	}
	got := streamInfo(t, s.JS, events.StreamName)
	if !got.AllowMsgTTL {
		t.Error("per-message TTL not enabled on the old stream")
	}
	if got.MaxBytes != -1 || got.MaxMsgSize != -1 || got.MaxMsgsPerSubject != -1 {
		t.Errorf("old stream's limits changed to %d, %d, %d; an existing stream keeps its own", got.MaxBytes, got.MaxMsgSize, got.MaxMsgsPerSubject)
	}
	if _, err := s.JS.KeyValue(t.Context(), events.BucketLocks); err != nil {
		t.Errorf("missing bucket not created: %v", err)
	}
}

// TestSetupBoundsANewStream: a new stream has the documented limits and
// refuses a message over MaxEventSize.
func TestSetupBoundsANewStream(t *testing.T) {
	s := natstest.Start(t)
	got := streamInfo(t, s.JS, events.StreamName)
	if got.MaxMsgSize != events.MaxEventSize || got.MaxBytes != events.DefaultMaxBytes || got.MaxMsgsPerSubject != events.DefaultMaxMsgsPerSubject ||
		got.MaxAge != events.DefaultMaxAge || got.Discard != jetstream.DiscardOld || !got.AllowMsgTTL {
		t.Errorf("new stream: %+v", got)
	}
	_, err := s.JS.Publish(t.Context(), "cutover.node.n1.status", bytes.Repeat([]byte("x"), events.MaxEventSize+1))
	if err == nil {
		t.Error("the stream stored a message over MaxEventSize")
	}
}

// TestSetupReplicas runs on a 3-server cluster: a service asking for 3
// replicas of an R1 stream logs it; with RaiseReplicas it raises the stream
// and every bucket; a later start asking for 1 lowers nothing.
func TestSetupReplicas(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	js := rawJS(t, c.URLs())
	if err := events.Setup(t.Context(), js, events.SetupConfig{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	var logs natstest.Logs
	if err := events.Setup(t.Context(), js, events.SetupConfig{Replicas: 3, Logger: logs.Logger()}); err != nil {
		t.Fatal(err)
	}
	if r := streamInfo(t, js, events.StreamName).Replicas; r != 1 {
		t.Fatalf("replicas raised to %d without RaiseReplicas", r)
	}
	if out := logs.String(); strings.Count(out, "fewer replicas than asked") != 1 || !strings.Contains(out, "bucket cutover-upgrades: 1") {
		t.Fatalf("want one warning naming the stream and buckets:\n%s", out)
	}
	if err := events.Setup(t.Context(), js, events.SetupConfig{Replicas: 3, RaiseReplicas: true}); err != nil {
		t.Fatal(err)
	}
	if err := events.Setup(t.Context(), js, events.SetupConfig{Replicas: 1, RaiseReplicas: true}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{events.StreamName, "KV_" + events.BucketNodes, "KV_" + events.BucketUpgrades, "KV_" + events.BucketLocks, "KV_" + events.BucketProcessed} {
		got := streamInfo(t, js, name)
		if got.Replicas != 3 {
			t.Errorf("%s: %d replicas, want 3 (raised, never lowered)", name, got.Replicas)
		}
		if name == "KV_"+events.BucketUpgrades && got.AllowDirect {
			t.Errorf("%s: direct gets on after raising replicas; its reads must go to its leader", name)
		}
	}
}

// TestSetupReadsUpgradesFromTheLeader: the planner reads an upgrade's record
// and saves it with compare-and-swap on the revision it read. With direct
// gets (nats.go's default for a bucket) a follower that has not applied the
// last save answers the read with the value before it, and on a cluster
// the planner's saves failed with "wrong last sequence" until the follower
// caught up. Setup turns direct gets off for cutover-upgrades, also on a
// bucket an older Setup made, and leaves the other buckets' reads to any
// replica.
func TestSetupReadsUpgradesFromTheLeader(t *testing.T) {
	js := rawJS(t, bareServer(t))
	// The bucket as an older Setup made it.
	if _, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: events.BucketUpgrades, History: 5}); err != nil {
		t.Fatal(err)
	}
	if !streamInfo(t, js, "KV_"+events.BucketUpgrades).AllowDirect {
		t.Fatal("nats.go made a bucket without direct gets; this test's premise is gone")
	}
	var logs natstest.Logs
	if err := events.Setup(t.Context(), js, events.SetupConfig{Logger: logs.Logger()}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{events.BucketNodes, events.BucketUpgrades, events.BucketLocks, events.BucketProcessed} {
		direct := streamInfo(t, js, "KV_"+b).AllowDirect
		if want := !events.LeaderReads(b); direct != want {
			t.Errorf("bucket %s: direct gets %v, want %v", b, direct, want)
		}
	}
	if !events.LeaderReads(events.BucketUpgrades) {
		t.Errorf("%s is not read from its leader", events.BucketUpgrades)
	}
	if !strings.Contains(logs.String(), "direct_get") {
		t.Errorf("Setup did not say it turned direct gets off:\n%s", logs.String())
	}
	// A client bound now reads through the leader, and compare-and-swap
	// on what it read succeeds.
	kv, err := js.KeyValue(t.Context(), events.BucketUpgrades)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(t.Context(), "u1", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(t.Context(), "u1")
	if err != nil || entry.Revision() != rev {
		t.Fatalf("read back %v, %v; want revision %d", entry, err, rev)
	}
	if _, err := kv.Update(t.Context(), "u1", []byte("b"), entry.Revision()); err != nil {
		t.Fatal(err)
	}
	// A second start changes nothing.
	var again natstest.Logs
	if err := events.Setup(t.Context(), js, events.SetupConfig{Logger: again.Logger()}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(again.String(), "changed KV bucket") {
		t.Errorf("a second Setup changed a bucket again:\n%s", again.String())
	}
}

// TestSetupReplicasOnOneServer: asking a single server for 3 replicas says
// what to do.
func TestSetupReplicasOnOneServer(t *testing.T) {
	_, _, err := events.Connect(t.Context(), events.ClientConfig{URL: bareServer(t)}, "test", events.WithSetup(events.SetupConfig{Replicas: 3}))
	if err == nil || !strings.Contains(err.Error(), "--stream-replicas 1") {
		t.Fatalf("Connect with 3 replicas on one server: %v; want an error saying to give --stream-replicas 1", err)
	}
}

// TestConnectNamesTheServersItTried: the CLI and services say where they
// looked, without a password.
func TestConnectNamesTheServersItTried(t *testing.T) {
	a, b := natstest.FreeAddr(t), natstest.FreeAddr(t)
	_, _, err := events.Connect(t.Context(), events.ClientConfig{URL: "nats://" + a + ",nats://ops:s3cret@" + b}, "test")
	if err == nil {
		t.Fatal("connected to nothing")
	}
	msg := err.Error()
	if !strings.Contains(msg, "nats://"+a) || !strings.Contains(msg, b) || strings.Contains(msg, "s3cret") {
		t.Errorf("error %q: want both servers named, no password", msg)
	}
}

// TestConnectLogsLostAndRegained: a service whose server goes away says
// so, reconnects when it is back, and keeps working.
func TestConnectLogsLostAndRegained(t *testing.T) {
	addr, dir := natstest.FreeAddr(t), t.TempDir()
	start := func() func() {
		s, err := embednats.Start(embednats.Config{Listen: addr, DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return func() { s.Shutdown(); s.WaitForShutdown() }
	}
	stop := start()
	var logs natstest.Logs
	nc, js, err := events.Connect(t.Context(), events.ClientConfig{URL: "nats://" + addr}, "test", events.WithLogger(logs.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stop()
	natstest.Eventually(t, 10*time.Second, "the lost-bus log line", func() bool { return strings.Contains(logs.String(), "lost the bus") })
	if want := "server=nats://" + addr; !strings.Contains(grepLine(logs.String(), "lost the bus"), want) {
		t.Errorf("the lost-bus line does not name the server it was on (%s):\n%s", want, logs.String())
	}
	stop = start()
	defer stop()
	natstest.Eventually(t, 20*time.Second, "the regained-bus log line", func() bool { return strings.Contains(logs.String(), "regained the bus") })
	natstest.Eventually(t, 10*time.Second, "a publish after the reconnect", func() bool {
		_, err := js.Publish(t.Context(), "cutover.node.n1.status", []byte("{}"))
		return err == nil
	})
	nc.Close()
	if n := strings.Count(logs.String(), "lost the bus"); n != 1 {
		t.Errorf("logged a lost bus %d times (a Close is not a loss):\n%s", n, logs.String())
	}
}

// grepLine is the first line of s holding w, or "".
func grepLine(s, w string) string {
	for line := range strings.Lines(s) {
		if strings.Contains(line, w) {
			return line
		}
	}
	return ""
}
