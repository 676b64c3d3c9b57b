package haproxy

import (
	"bytes"
	"context"

	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
	"time"
)

// Backend is one load-balanced service.
type Backend struct {
	// Name is the backend (and frontend) name.
	Name string
	// Listen is the frontend address, host:port.
	Listen string
	// Servers maps a server name to its address, host:port.
	Servers map[string]string
	// HealthPath, when set, is checked with HTTP GET every 500ms.
	HealthPath string
	// NoRetry turns off the defaults' retries and redispatch for this
	// backend, so a request sent to a server that is gone fails instead of
	// being retried on another: how a load balancer without them behaves.
	NoRetry bool
}

// Process is an HAProxy started by Run.
type Process struct {
	*Client
	cmd  *exec.Cmd
	dir  string
	done chan error
	log  *bytes.Buffer
}

var configTemplate = template.Must(template.New("cfg").Parse(`global
    stats socket {{.Socket}} level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A request to a server that fails to connect is retried on another.
    retries 3
    option redispatch
{{range .Backends}}
frontend {{.Name}}
    bind {{.Listen}}
    default_backend {{.Name}}

backend {{.Name}}
    balance roundrobin
{{- if .NoRetry}}
    retries 0
    no option redispatch
{{- end}}
{{- if .HealthPath}}
    option httpchk GET {{.HealthPath}}
{{- end}}
{{- $check := .HealthPath}}
{{- range $name, $addr := .Servers}}
    server {{$name}} {{$addr}}{{if $check}} check inter 500ms fall 2 rise 1{{end}}
{{- end}}
{{end}}`))

// Run writes a configuration for the backends into dir and starts HAProxy in
// the foreground (haproxy -db), waiting until its runtime API answers.
// haproxy must be on PATH (scripts/install-haproxy.sh installs it).
func Run(ctx context.Context, dir string, backends ...Backend) (*Process, error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return nil, fmt.Errorf("run haproxy: %w (install it with scripts/install-haproxy.sh)", err)
	}
	socket := filepath.Join(dir, "haproxy.sock")
	var cfg bytes.Buffer
	data := struct {
		Socket   string
		Backends []Backend
	}{socket, backends}
	if err := configTemplate.Execute(&cfg, data); err != nil {
		return nil, fmt.Errorf("render haproxy config: %w", err)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, cfg.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("write haproxy config: %w", err)
	}
	p := &Process{Client: &Client{Socket: socket}, dir: dir, done: make(chan error, 1), log: &bytes.Buffer{}}
	p.cmd = exec.Command(bin, "-db", "-f", path)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start haproxy: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if conn, err := net.Dial("unix", socket); err == nil {
			conn.Close()
			return p, nil
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("haproxy exited at start: %v\n%s", err, p.log)
		case <-ctx.Done():
			_ = p.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.Close()
			return nil, fmt.Errorf("haproxy runtime API at %s did not answer in 10s\n%s", socket, p.log)
		}
	}
}

// Close stops HAProxy.
func (p *Process) Close() error {
	if p.cmd.Process == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// Log returns what HAProxy printed.
func (p *Process) Log() string { return p.log.String() }
