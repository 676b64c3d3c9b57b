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

// Kill shuts server i down at once (its clients see the connection drop).
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

// WaitMetaLeader waits until the running servers elected a JetStream meta leader.
func (c *Cluster) WaitMetaLeader() {
	c.t.Helper()
	Eventually(c.t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range c.Servers {
			if s != nil && s.JetStreamIsLeader() {
				return true
			}
		}
		return false
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
