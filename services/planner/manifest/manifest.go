// Package manifest reads release manifests: the YAML file an operator writes
// to say which image each service should run. `cutover apply` turns one into
// a dev.cutover.upgrade.requested event.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/yamlpos"
)

// File is a release manifest as written in YAML.
//
//	release: demo-v2
//	failure_action: rollback   # rollback (default), pause or continue
//	wait_for_verdicts: true    # each wave waits for the auditor's healthy verdicts on the last
//	verdict_timeout: 5m        # ... for this long at most, then the upgrade pauses
//	pause_after_canary: true   # pause after the first wave until cutover promote
//	services:
//	  web:
//	    image: registry.example/web:2.0.1
//	    strategy: stop-first     # or start-first
//	    min_healthy: 2s
//	    health_timeout: 60s
//	    env: {LOG_LEVEL: info}   # config the new containers must have
//	    migrations_version: 7    # highest migration the new image carries
//	    max_unavailable: 25%     # overrides the inventory's
//	    depends_on: [db]         # rolled after these services
//	    images: {web_worker: registry.example/web-worker:2.0.1}  # per container
type File struct {
	Release       string `yaml:"release"`
	FailureAction string `yaml:"failure_action"`
	// WaitForVerdicts makes each wave wait for the auditor's healthy
	// verdicts on the services the wave before it changed.
	WaitForVerdicts bool `yaml:"wait_for_verdicts"`
	// VerdictTimeout bounds that wait (default: the planner's, 5m).
	VerdictTimeout string `yaml:"verdict_timeout"`
	// PauseAfterCanary pauses the upgrade after its first wave (the
	// canary) until an operator promotes it (cutover promote).
	PauseAfterCanary bool               `yaml:"pause_after_canary"`
	Services         map[string]Service `yaml:"services"`
}

// Service is one service's target in a manifest.
type Service struct {
	Image         string `yaml:"image"`
	Strategy      string `yaml:"strategy"`
	MinHealthy    string `yaml:"min_healthy"`
	HealthTimeout string `yaml:"health_timeout"`
	// Env is the environment the new containers must have; a container
	// whose env differs on one of these keys changes ("config changed").
	Env map[string]string `yaml:"env"`
	// MigrationsVersion is the highest migration version the new image
	// carries; above the database's version the service is upgraded
	// (migrations run) rather than updated.
	MigrationsVersion int `yaml:"migrations_version"`
	// MaxUnavailable overrides the inventory's max_unavailable: a count or a percent.
	MaxUnavailable string `yaml:"max_unavailable"`
	// DependsOn names services rolled before this one.
	DependsOn []string `yaml:"depends_on"`
	// Images overrides the image per container name, for services whose
	// containers run different images (e.g. keystone and keystone_fernet).
	Images map[string]string `yaml:"images"`
	// DrainAckTimeout makes node-updaters wait up to this long for a load
	// balancer agent to take a container out before stopping it.
	DrainAckTimeout string `yaml:"drain_ack_timeout"`
	// DrainAckRequired fails the replacement when no acknowledgement comes.
	DrainAckRequired bool `yaml:"drain_ack_required"`
	// Probe checks new containers whose image has no Docker HEALTHCHECK.
	Probe *Probe `yaml:"probe"`
}

// Probe is a health probe in a manifest.
type Probe struct {
	// Type is http, tcp or exec.
	Type string `yaml:"type"`
	// Port is the container port of an http or tcp probe.
	Port int `yaml:"port"`
	// Path is an http probe's path (default /).
	Path string `yaml:"path"`
	// Command is an exec probe's command.
	Command []string `yaml:"command"`
	// Timeout bounds one probe (default 2s); Interval is the pause between probes (default 500ms).
	Timeout  string `yaml:"timeout"`
	Interval string `yaml:"interval"`
}

// Release is a parsed manifest: the upgrade request it describes and the
// planning inputs that the request event does not carry.
type Release struct {
	// Request is the dev.cutover.upgrade.requested data.
	Request events.UpgradeRequested
	// Services holds each service's manifest entry as written.
	Services map[string]Service
}

// LoadRelease reads and validates a manifest file with its planning inputs.
func LoadRelease(path string) (Release, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Release{}, fmt.Errorf("read release manifest: %w", err)
	}
	return ParseRelease(path, raw)
}

// Load reads and validates a manifest file.
func Load(path string) (events.UpgradeRequested, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return events.UpgradeRequested{}, fmt.Errorf("read release manifest: %w", err)
	}
	return Parse(path, raw)
}

// Parse validates a manifest and returns the upgrade request it describes.
// Every problem is reported at once, each naming the file, line and field.
func Parse(name string, raw []byte) (events.UpgradeRequested, error) {
	rel, err := ParseRelease(name, raw)
	return rel.Request, err
}

// ParseRelease is Parse keeping the planning inputs (env, migrations
// version, max_unavailable, depends_on).
func ParseRelease(name string, raw []byte) (Release, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return Release{}, yamlpos.Explain(name, raw, err, "")
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return Release{}, yamlpos.Explain(name, raw, err, "known fields: release, failure_action, wait_for_verdicts, verdict_timeout, pause_after_canary, services.<name>.image|strategy|min_healthy|health_timeout|env|migrations_version|max_unavailable|depends_on|images|drain_ack_timeout|drain_ack_required|probe")
	}
	var errs []error
	bad := func(path []string, format string, args ...any) {
		line := yamlpos.Line(&root, path)
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, line, yamlpos.Join(path), fmt.Sprintf(format, args...)))
	}
	if f.Release == "" {
		bad([]string{"release"}, "is missing; name the release, e.g. release: 2025.1")
	}
	switch f.FailureAction {
	case "", "rollback", "pause", "continue":
	default:
		bad([]string{"failure_action"}, "%q is not one of rollback, pause, continue", f.FailureAction)
	}
	if len(f.Services) == 0 {
		bad([]string{"services"}, "is empty; list at least one service and its image")
	}
	verdictTimeout, err := duration(f.VerdictTimeout)
	if err != nil {
		bad([]string{"verdict_timeout"}, "%v", err)
	} else if verdictTimeout > 0 && !f.WaitForVerdicts {
		bad([]string{"verdict_timeout"}, "is set but wait_for_verdicts is not; add wait_for_verdicts: true or remove verdict_timeout")
	}
	req := events.UpgradeRequested{FailureAction: f.FailureAction, WaitForVerdicts: f.WaitForVerdicts, VerdictTimeoutMs: verdictTimeout.Milliseconds(), PauseAfterCanary: f.PauseAfterCanary,
		Release: events.Release{Name: f.Release, Services: map[string]events.ServiceRelease{}}}
	for _, svc := range sortedKeys(f.Services) {
		s := f.Services[svc]
		p := []string{"services", svc}
		if s.Image == "" {
			bad(append(p, "image"), "is missing; give the target image, e.g. image: registry/web:2.0.1")
		} else if err := checkImage(s.Image); err != nil {
			bad(append(p, "image"), "%v", err)
		}
		for _, c := range sortedKeys(s.Images) {
			if err := checkImage(s.Images[c]); err != nil {
				bad(append(p, "images", c), "%v", err)
			}
		}
		switch s.Strategy {
		case "", "stop-first", "start-first":
		default:
			bad(append(p, "strategy"), "%q is not stop-first or start-first", s.Strategy)
		}
		minHealthy, err := duration(s.MinHealthy)
		if err != nil {
			bad(append(p, "min_healthy"), "%v", err)
		}
		timeout, err := duration(s.HealthTimeout)
		if err != nil {
			bad(append(p, "health_timeout"), "%v", err)
		}
		if s.MigrationsVersion < 0 {
			bad(append(p, "migrations_version"), "%d is negative", s.MigrationsVersion)
		}
		if s.MaxUnavailable != "" {
			if _, err := inventory.ParseAmount(s.MaxUnavailable); err != nil {
				bad(append(p, "max_unavailable"), "%v", err)
			}
		}
		for i, d := range s.DependsOn {
			if d == svc {
				bad(append(p, "depends_on", strconv.Itoa(i)), "a service cannot depend on itself")
			}
		}
		drainAck, err := duration(s.DrainAckTimeout)
		if err != nil {
			bad(append(p, "drain_ack_timeout"), "%v", err)
		}
		probe, probeErr := s.Probe.event()
		if probeErr != nil {
			bad(append(p, "probe"), "%v", probeErr)
		}
		req.Release.Services[svc] = events.ServiceRelease{Image: s.Image, MigrationsVersion: uint(s.MigrationsVersion), Strategy: s.Strategy, MinHealthyMs: minHealthy.Milliseconds(), HealthTimeoutMs: timeout.Milliseconds(),
			DrainAckTimeoutMs: drainAck.Milliseconds(), DrainAckRequired: s.DrainAckRequired, Probe: probe, Images: s.Images}
	}
	if err := errors.Join(errs...); err != nil {
		return Release{}, err
	}
	return Release{Request: req, Services: f.Services}, nil
}

// The grammar of an image reference as Docker's engine parses it:
// [host[:port]/]path[:tag][@algorithm:hex], path components lower case.
var (
	imageHost = `(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?`
	imagePath = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	imageRef  = regexp.MustCompile(`^(?:` + imageHost + `/)?` + imagePath + `(?:/` + imagePath + `)*` +
		`(?::[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(?:@[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[0-9a-fA-F]{32,})?$`)
)

// checkImage refuses what no registry serves, so a typo fails here rather
// than after five pulls on the first node of the first wave.
func checkImage(ref string) error {
	if imageRef.MatchString(ref) {
		return nil
	}
	hint := ""
	switch {
	case strings.ContainsFunc(ref, unicode.IsSpace):
		hint = ": it contains a space"
	case imageRef.MatchString(strings.ToLower(ref)): // only the path may not have capitals
		hint = ": repository names are lower case"
	}
	return fmt.Errorf("%q is not an image reference like registry.example/web:2.0.1 or registry.example/web@sha256:<digest>%s", ref, hint)
}

// duration parses an optional duration of the manifest ("" is 0), as the
// inventory's are parsed.
var duration = inventory.ParseDuration

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// event converts a manifest probe to the one node commands carry.
func (p *Probe) event() (*events.Probe, error) {
	if p == nil {
		return nil, nil
	}
	switch p.Type {
	case events.ProbeHTTP, events.ProbeTCP:
		if p.Port <= 0 || p.Port > 65535 {
			return nil, fmt.Errorf("an %s probe needs the container port to check (port: 8080)", p.Type)
		}
	case events.ProbeExec:
		if len(p.Command) == 0 {
			return nil, fmt.Errorf("an exec probe needs a command (command: [/app, health])")
		}
	default:
		return nil, fmt.Errorf("type %q is not http, tcp or exec", p.Type)
	}
	timeout, err := duration(p.Timeout)
	if err != nil {
		return nil, fmt.Errorf("timeout: %w", err)
	}
	interval, err := duration(p.Interval)
	if err != nil {
		return nil, fmt.Errorf("interval: %w", err)
	}
	return &events.Probe{Type: p.Type, Port: p.Port, Path: p.Path, Command: p.Command, TimeoutMs: timeout.Milliseconds(), IntervalMs: interval.Milliseconds()}, nil
}
