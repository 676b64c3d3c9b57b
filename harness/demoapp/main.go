package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Modes selected with DEMO_MODE.
const (
	modeHealthy      = "healthy"
	modeNeverHealthy = "never-healthy"
	modeCrash        = "crash"
	modeSlowStart    = "slow-start"
	modeWorkloadHost = "workload-host"
	modeVM           = "vm"
)

// workloadChildren is how many long-lived "VM" processes workload-host starts.
const workloadChildren = 3

// shutdownTimeout bounds the graceful HTTP drain after SIGTERM; Docker's
// default stop timeout is 10s, so finish well before the SIGKILL.
const shutdownTimeout = 5 * time.Second

type config struct {
	version string
	listen  string
	dataDir string
	mode    string
	slow    time.Duration
	// db is the SQLite file of the items API (DEMO_DB); empty turns it off.
	db string
	// dbSchema is the schema generation the items API speaks (DEMO_DB_SCHEMA).
	dbSchema int
}

func loadConfig() (config, error) {
	cfg := config{
		version:  envOr("DEMO_VERSION", "dev"),
		listen:   envOr("DEMO_LISTEN", ":8080"),
		dataDir:  envOr("DEMO_DATA", "/data"),
		mode:     envOr("DEMO_MODE", modeHealthy),
		slow:     5 * time.Second,
		db:       os.Getenv("DEMO_DB"),
		dbSchema: schemaV1,
	}
	if s := os.Getenv("DEMO_DB_SCHEMA"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || (n != schemaV1 && n != schemaV2) {
			return cfg, fmt.Errorf("parse DEMO_DB_SCHEMA %q: want 1 or 2", s)
		}
		cfg.dbSchema = n
	}
	if s := os.Getenv("DEMO_SLOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return cfg, fmt.Errorf("parse DEMO_SLOW %q: %w", s, err)
		}
		cfg.slow = d
	}
	switch cfg.mode {
	case modeHealthy, modeNeverHealthy, modeCrash, modeSlowStart, modeWorkloadHost, modeVM:
	default:
		return cfg, fmt.Errorf("unknown DEMO_MODE %q", cfg.mode)
	}
	return cfg, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := loadConfig()
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		os.Exit(2)
	}
	if len(os.Args) > 1 && os.Args[1] == "health" {
		if err := probe(cfg.listen); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ok")
		return
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger = logger.With("version", cfg.version, "mode", cfg.mode)
	if line := os.Getenv("DEMO_LOG"); line != "" {
		// A line of the test's choosing, e.g. one holding a secret that
		// must not leave the node in container.reverted.
		logger.Info(line)
	}
	if err := run(ctx, logger, cfg); err != nil {
		logger.Error("demoapp failed", "err", err)
		os.Exit(1)
	}
}

// probe is the HEALTHCHECK: GET /healthz on the loopback port we listen on.
func probe(listen string) error {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("parse DEMO_LISTEN %q: %w", listen, err)
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get("http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz")
	if err != nil {
		return fmt.Errorf("probe healthz: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe healthz: status %d", resp.StatusCode)
	}
	return nil
}

func run(ctx context.Context, logger *slog.Logger, cfg config) error {
	switch cfg.mode {
	case modeCrash:
		return errors.New("crash mode: exiting on purpose")
	case modeVM:
		// A stand-in for a long-lived workload process: it only waits to be
		// told to stop.
		<-ctx.Done()
		return nil
	}

	app := &app{cfg: cfg, started: time.Now()}
	app.hostname, _ = os.Hostname()
	if cfg.db != "" {
		items, err := openItems(ctx, cfg.db, cfg.dbSchema, cfg.version)
		if err != nil {
			return err
		}
		defer items.Close()
		app.items = items
	}
	switch cfg.mode {
	case modeHealthy:
		app.record(logger, "started "+cfg.version)
	case modeWorkloadHost:
		children, err := startChildren(ctx, cfg)
		if err != nil {
			return err
		}
		defer waitChildren(logger, children)
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	srv := &http.Server{Handler: app.routes(), ReadHeaderTimeout: 5 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("demoapp serving", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	logger.Info("demoapp shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	<-serveErr
	return nil
}

type app struct {
	cfg      config
	hostname string
	started  time.Time
	mu       sync.Mutex // serialises appends to records.log
	items    *itemStore // nil unless DEMO_DB is set
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.handleRoot)
	mux.HandleFunc("GET /healthz", a.handleHealth)
	mux.HandleFunc("GET /data", a.handleReadData)
	mux.HandleFunc("POST /data", a.handleAppendData)
	if a.items != nil {
		mux.HandleFunc("POST /items", a.handlePostItem)
		mux.HandleFunc("GET /items/{id}", a.handleGetItem)
	}
	return mux
}

func (a *app) handleRoot(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"version":  a.cfg.version,
		"hostname": a.hostname,
		"mode":     a.cfg.mode,
	})
}

func (a *app) healthy() bool {
	switch a.cfg.mode {
	case modeNeverHealthy:
		return false
	case modeSlowStart:
		return time.Since(a.started) >= a.cfg.slow
	default:
		return true
	}
}

func (a *app) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if !a.healthy() {
		http.Error(w, "unhealthy", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (a *app) recordsPath() string { return filepath.Join(a.cfg.dataDir, "records.log") }

func (a *app) handleReadData(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	b, err := os.ReadFile(a.recordsPath())
	a.mu.Unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(b)
}

func (a *app) handleAppendData(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	line := strings.TrimRight(string(body), "\r\n")
	if err := a.appendLine(line); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) appendLine(line string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.OpenFile(a.recordsPath(), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("open records: %w", err)
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		_ = f.Close()
		return fmt.Errorf("append record: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close records: %w", err)
	}
	return nil
}

// record appends a start-up line; a missing or read-only data dir is normal
// when the container runs without a volume, so it is only logged.
func (a *app) record(logger *slog.Logger, line string) {
	if err := a.appendLine(line); err != nil {
		logger.Debug("skip start record", "err", err)
	}
}

// startChildren re-executes this binary as DEMO_MODE=vm processes and writes
// their PIDs, one per line, to $DEMO_DATA/vms.pids. The children are tied to
// ctx: on SIGTERM they are signalled and reaped before the parent exits.
func startChildren(ctx context.Context, cfg config) ([]*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	children := make([]*exec.Cmd, 0, workloadChildren)
	pids := make([]string, 0, workloadChildren)
	for i := range workloadChildren {
		cmd := exec.CommandContext(ctx, self)
		cmd.Env = append(os.Environ(), "DEMO_MODE="+modeVM, "DEMO_VM_INDEX="+strconv.Itoa(i))
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = shutdownTimeout
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, errors.Join(fmt.Errorf("start vm %d: %w", i, err), stopChildren(children))
		}
		children = append(children, cmd)
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
	}
	path := filepath.Join(cfg.dataDir, "vms.pids")
	if err := os.WriteFile(path, []byte(strings.Join(pids, "\n")+"\n"), 0o644); err != nil {
		return nil, errors.Join(fmt.Errorf("write %s: %w", path, err), stopChildren(children))
	}
	return children, nil
}

func stopChildren(children []*exec.Cmd) error {
	var errs []error
	for _, c := range children {
		if err := c.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, err)
		}
		_ = c.Wait()
	}
	return errors.Join(errs...)
}

func waitChildren(logger *slog.Logger, children []*exec.Cmd) {
	for _, c := range children {
		if err := c.Wait(); err != nil {
			logger.Debug("vm exited", "pid", c.Process.Pid, "err", err)
		}
	}
}
