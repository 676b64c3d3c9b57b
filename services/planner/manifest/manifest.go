// Package manifest reads release manifests: the YAML file an operator writes
// to say which image each service should run. `cutover apply` turns one into
// a dev.cutover.upgrade.requested event.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/events"
)

// File is a release manifest as written in YAML.
//
//	release: demo-v2
//	failure_action: rollback   # rollback (default), pause or continue
//	services:
//	  web:
//	    image: registry.example/web:2.0.1
//	    strategy: stop-first     # or start-first
//	    min_healthy: 2s
//	    health_timeout: 60s
type File struct {
	Release       string             `yaml:"release"`
	FailureAction string             `yaml:"failure_action"`
	Services      map[string]Service `yaml:"services"`
}

// Service is one service's target in a manifest.
type Service struct {
	Image         string `yaml:"image"`
	Strategy      string `yaml:"strategy"`
	MinHealthy    string `yaml:"min_healthy"`
	HealthTimeout string `yaml:"health_timeout"`
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
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return events.UpgradeRequested{}, fmt.Errorf("%s: not valid YAML: %w", name, err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return events.UpgradeRequested{}, fmt.Errorf("%s: %w (known fields: release, failure_action, services.<name>.image|strategy|min_healthy|health_timeout)", name, err)
	}
	var errs []error
	bad := func(path []string, format string, args ...any) {
		line := lineOf(&root, path)
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, line, joinPath(path), fmt.Sprintf(format, args...)))
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
	req := events.UpgradeRequested{FailureAction: f.FailureAction, Release: events.Release{Name: f.Release, Services: map[string]events.ServiceRelease{}}}
	for svc, s := range f.Services {
		p := []string{"services", svc}
		if s.Image == "" {
			bad(append(p, "image"), "is missing; give the target image, e.g. image: registry/web:2.0.1")
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
		req.Release.Services[svc] = events.ServiceRelease{Image: s.Image, Strategy: s.Strategy, MinHealthyMs: minHealthy.Milliseconds(), HealthTimeoutMs: timeout.Milliseconds()}
	}
	if err := errors.Join(errs...); err != nil {
		return events.UpgradeRequested{}, err
	}
	return req, nil
}

func duration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration like 2s or 1m30s", s)
	}
	return d, nil
}

// lineOf returns the line of the deepest node of path that exists.
func lineOf(root *yaml.Node, path []string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			break
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			break
		}
	}
	return line
}

func joinPath(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}
