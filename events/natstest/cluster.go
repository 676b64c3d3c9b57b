package natstest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cutover-dev/cutover/events/embednats"
)

// Cluster is a JetStream cluster of in-process nats-servers on loopback,
// joined by routes. Servers can be shut down hard and restarted on the
// same ports and store.
type Cluster struct {
	t       testing.TB
	Servers []*server.Server // nil while a server is down
	client  []string         // client host:port of each server
	route   []string         // route host:port of each server
	dirs    []string
}

// StartCluster starts n servers and waits until JetStream has a meta
// leader. Everything stops at the end of the test.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Servers: make([]*server.Server, n)}
	for i := range n {
		c.client = append(c.client, FreeAddr(t))
		c.route = append(c.route, FreeAddr(t))
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)))
	}
	t.Cleanup(func() {
		for i := range c.Servers {
			c.Kill(i)
		}
	})
	for i := range n {
		c.Restart(i)
	}
	c.WaitMetaLeader()
	return c
}

// URLs is every server's client URL, comma-separated, as services take them.
func (c *Cluster) URLs() string {
	var out []string
	for _, a := range c.client {
		out = append(out, "nats://"+a)
	}
	return strings.Join(out, ",")
}

// Kill shuts server i down at once: its clients see the connection drop
// and the cluster loses its copies until Restart. (In-process, the
// nearest to a crash: no lame-duck mode, no leadership handed over first.)
func (c *Cluster) Kill(i int) {
	if s := c.Servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Servers[i] = nil
	}
}

// Restart starts server i again on its ports and store.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	s, err := embednats.Start(embednats.Config{
		Listen:  c.client[i],
		DataDir: c.dirs[i],
		Name:    fmt.Sprintf("n%d", i),
		Cluster: &embednats.Cluster{Name: "cutover-test", Listen: c.route[i], Routes: c.route},
	})
	if err != nil {
		c.t.Fatalf("start server n%d: %v", i, err)
	}
	c.Servers[i] = s
}

// Index returns the index of the server named name ("n0", ...), or -1.
func (c *Cluster) Index(name string) int {
	for i := range c.Servers {
		if fmt.Sprintf("n%d", i) == name {
			return i
		}
	}
	return -1
}

// WaitMetaLeader waits until the running servers elected a JetStream meta
// leader and it knows every running server as a JetStream peer with
// current stats: before that, a stream with replicas finds "no suitable
// peers for placement".
func (c *Cluster) WaitMetaLeader() {
	c.t.Helper()
	Eventually(c.t, 30*time.Second, "a JetStream meta leader that knows every running server", func() bool {
		running := 0
		var leader *server.Server
		for _, s := range c.Servers {
			if s == nil {
				continue
			}
			running++
			if s.JetStreamIsLeader() {
				leader = s
			}
		}
		return leader != nil && len(leader.JetStreamClusterPeers()) == running
	})
}

// FreeAddr returns a loopback address whose port is free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// account is the account the test cluster's clients use (no authorization:
// the global account).
const account = server.DEFAULT_GLOBAL_ACCOUNT

// StreamLeader returns the index of the running server that leads stream
// (a KV bucket's stream is "KV_"+bucket), or -1 while there is none.
func (c *Cluster) StreamLeader(stream string) int {
	for i, s := range c.Servers {
		if s != nil && s.JetStreamIsStreamLeader(account, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until a running server leads stream and returns its index.
func (c *Cluster) WaitStreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	Eventually(c.t, 30*time.Second, "a leader of stream "+stream, func() bool {
		leader = c.StreamLeader(stream)
		return leader >= 0
	})
	return leader
}

// BucketLeader is StreamLeader of a KV bucket's stream.
func (c *Cluster) BucketLeader(bucket string) int { return c.StreamLeader("KV_" + bucket) }

// StreamState returns server i's own copy of stream's state (messages,
// bytes, first and last sequence), read from its monitoring; false when
// the server is down or holds no copy.
func (c *Cluster) StreamState(i int, stream string) (server.StreamState, bool) {
	s := c.Servers[i]
	if s == nil {
		return server.StreamState{}, false
	}
	info, err := s.Jsz(&server.JSzOptions{Account: account, Streams: true})
	if err != nil {
		return server.StreamState{}, false
	}
	for _, a := range info.AccountDetails {
		for _, sd := range a.Streams {
			if sd.Name == stream {
				return sd.State, true
			}
		}
	}
	return server.StreamState{}, false
}

// WaitCaughtUp waits until server i's copy of stream is current in its
// replica group and holds what the leader holds (same messages, bytes and
// sequences): a restarted server has caught up.
func (c *Cluster) WaitCaughtUp(i int, stream string) {
	c.t.Helper()
	var mine, lead server.StreamState
	Eventually(c.t, 30*time.Second, fmt.Sprintf("server n%d to catch up on stream %s", i, stream), func() bool {
		l := c.StreamLeader(stream)
		if l < 0 || c.Servers[i] == nil || !c.Servers[i].JetStreamIsStreamCurrent(account, stream) {
			return false
		}
		var ok1, ok2 bool
		mine, ok1 = c.StreamState(i, stream)
		lead, ok2 = c.StreamState(l, stream)
		return ok1 && ok2 && mine.Msgs == lead.Msgs && mine.Bytes == lead.Bytes &&
			mine.FirstSeq == lead.FirstSeq && mine.LastSeq == lead.LastSeq
	})
}
