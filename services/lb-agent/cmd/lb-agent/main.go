// Command lb-agent keeps an HAProxy in step with cutover's node-updaters:
// it drains a container's backend server before the container stops and
// puts it back once the replacement is up.
//
//	lb-agent --nats nats://127.0.0.1:4222 --haproxy-socket /run/haproxy/admin.sock \
//	    --server web-1=web/s1 --server web-2=web/s2
//
// With Kolla, where every controller runs a container of the same name and
// HAProxy names a backend's servers after the nodes, one flag per service:
//
//	lb-agent --backend nova_api=nova_api_back --backend keystone=keystone_internal_back
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/busflag"
	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
	"github.com/cutover-dev/cutover/services/lb-agent/haproxy"
)

// backendFlags collects --backend container=backend.
type backendFlags map[string]string

func (b backendFlags) String() string { return fmt.Sprint(map[string]string(b)) }

func (b backendFlags) Set(v string) error {
	container, backend, ok := strings.Cut(v, "=")
	if !ok || container == "" || backend == "" {
		return fmt.Errorf("%q: want container=backend, e.g. nova_api=nova_api_back (the backend's servers are named after the nodes)", v)
	}
	b[container] = backend
	return nil
}

// serverFlags collects --server [node/]container=backend/server.
type serverFlags map[string]lbagent.Server

func (s serverFlags) String() string { return fmt.Sprint(map[string]lbagent.Server(s)) }

func (s serverFlags) Set(v string) error {
	container, target, ok := strings.Cut(v, "=")
	backend, server, ok2 := strings.Cut(target, "/")
	if !ok || !ok2 || container == "" || backend == "" || server == "" {
		return fmt.Errorf("%q: want [node/]container=backend/server, e.g. web-1=web/s1 or controller1/nova_api=nova_api_back/controller1", v)
	}
	s[container] = lbagent.Server{Backend: backend, Server: server}
	return nil
}

func main() {
	servers := serverFlags{}
	natsCfg := events.AddClientFlags(flag.CommandLine, os.Getenv)
	bus := busflag.Register(flag.CommandLine)
	socket := flag.String("haproxy-socket", "/run/haproxy/admin.sock", "HAProxy runtime API socket (stats socket ... level admin)")
	// Every default lives in lbagent.Config: a flag left at zero takes it.
	name := flag.String("name", "", fmt.Sprintf("agent name (its durable consumer; one per load balancer) (default %q)", lbagent.DefaultName))
	drain := flag.Duration("drain-timeout", 0, fmt.Sprintf("how long to wait for a server's sessions to end (default %v)", lbagent.DefaultDrainTimeout))
	lookback := flag.Duration("lookback", 0, fmt.Sprintf("on the agent's first start, act on drain requests up to this old, not on the whole history; keep it above the longest drain_ack_timeout (default %v)", lbagent.DefaultLookback))
	flag.Var(servers, "server", "[node/]container=backend/server, repeated for each container behind this load balancer")
	backends := backendFlags{}
	flag.Var(backends, "backend", "container=backend: the container on node N is the backend's server N (Kolla's naming), repeated per service")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	setup, err := bus.Config(log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lb-agent:", err)
		os.Exit(2)
	}
	cfg := lbagent.Config{Name: *name, Servers: servers, Backends: backends, DrainTimeout: *drain, Lookback: *lookback, Logger: log}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "lb-agent:", err)
		os.Exit(2)
	}
	if err := run(*natsCfg, setup, *socket, cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "lb-agent:", err)
		os.Exit(1)
	}
}

func run(natsCfg events.ClientConfig, setup events.SetupConfig, socket string, cfg lbagent.Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nc, js, err := events.Connect(ctx, natsCfg, "cutover-"+cmp.Or(cfg.Name, lbagent.DefaultName), events.WithSetup(setup), events.WithLogger(log))
	if err != nil {
		return err
	}
	defer nc.Close()
	a, err := lbagent.New(cfg, js, &haproxy.Client{Socket: socket})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	log.Info("lb-agent running", "nats", events.RedactURL(natsCfg.URL), "haproxy", socket, "servers", len(cfg.Servers), "backends", len(cfg.Backends))
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.Close(shutdown)
}
