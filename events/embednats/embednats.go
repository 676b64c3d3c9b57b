// Package embednats runs a nats-server with JetStream inside the current
// process. `cutover dev` uses it for the all-in-one mode, tests use it for a
// real broker that costs nothing to start.
package embednats

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MaxPayload is the largest message the embedded server accepts (8 MiB).
const MaxPayload = 8 << 20

// Config configures an embedded server.
type Config struct {
	// Listen is the client address, host:port (port 0 picks a free one; -1 disables it).
	Listen string
	// DataDir holds the JetStream file store; the server resumes from it on restart.
	DataDir string
	// Name is the server name (default "cutover-dev"); unique in a cluster.
	Name string
	// ConfigFile, when set, is a nats-server configuration file read first
	// (authorization, tls, ...); Listen, DataDir and Name above override its
	// address, store and name. `cutover dev` writes one with the
	// authorization `cutover nats-config` generates.
	ConfigFile string
	// Cluster, when set, makes the server one of a JetStream cluster.
	Cluster *Cluster
}

// Cluster joins a server to a JetStream cluster.
type Cluster struct {
	// Name is the cluster's name, the same on every server.
	Name string
	// Listen is this server's route address, host:port.
	Listen string
	// Routes are every server's route address, host:port (this one's may be
	// among them).
	Routes []string
}

// Start runs a server and waits until it accepts connections.
func Start(cfg Config) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w (want host:port, e.g. 127.0.0.1:4222)", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server reads 0 as its default port, 4222
	}
	if cfg.Name == "" {
		cfg.Name = "cutover-dev"
	}
	opts := &server.Options{}
	if cfg.ConfigFile != "" {
		if opts, err = server.ProcessConfigFile(cfg.ConfigFile); err != nil {
			return nil, fmt.Errorf("read nats-server config %s: %w", cfg.ConfigFile, err)
		}
	}
	opts.ServerName = cfg.Name
	opts.Host = host
	opts.Port = port
	opts.JetStream = true
	opts.StoreDir = cfg.DataDir
	opts.NoSigs = true
	opts.NoLog = true
	// The planner keeps an upgrade's state in one KV value, which passes
	// NATS's default 1 MB from about 200 nodes x 20 containers. A stopgap
	// until that state is split per node (see docs/benchmarks.md).
	opts.MaxPayload = MaxPayload
	if c := cfg.Cluster; c != nil {
		chost, cport, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("cluster listen address %q: %w (want host:port, e.g. 127.0.0.1:6222)", c.Listen, err)
		}
		opts.Cluster.Name = c.Name
		opts.Cluster.Host = chost
		if opts.Cluster.Port, err = strconv.Atoi(cport); err != nil {
			return nil, fmt.Errorf("cluster listen port %q: %w", cport, err)
		}
		var routes []string
		for _, r := range c.Routes {
			routes = append(routes, "nats-route://"+r)
		}
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(15 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s did not become ready in 15s (is the port in use?)", cfg.Listen)
	}
	return s, nil
}
