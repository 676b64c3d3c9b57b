package verdict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultService is the service name that sets Policies.Default in a
// --policy flag or a policies file.
const DefaultService = "default"

// policyKeys are the keys of a policy in a flag or a file, in the order the
// errors list them.
var policyKeys = []string{"consecutive", "ratio", "min_signals", "min_healthy", "max_interruption", "action"}

// Policies is a set of policies read from configuration: flags, a YAML
// file, or both (see Set and ParsePoliciesYAML). Put it in Config with
// Apply.
type Policies struct {
	// Default judges the services without a policy of their own.
	Default Policy
	// Services maps a service to its policy.
	Services map[string]Policy
}

// Apply sets c's policies from ps.
func (ps Policies) Apply(c *Config) {
	c.Default = ps.Default
	c.Policies = ps.Services
}

// String implements flag.Value: the policies in flag syntax, sorted.
func (ps *Policies) String() string {
	if ps == nil {
		return ""
	}
	var out []string
	for svc, p := range ps.Services {
		out = append(out, formatPolicy(svc, p))
	}
	sort.Strings(out)
	if ps.Default != (Policy{}) {
		out = append([]string{formatPolicy(DefaultService, ps.Default)}, out...)
	}
	return strings.Join(out, " ")
}

// Set implements flag.Value for a repeatable --policy flag: it parses one
// SERVICE:KEY=VALUE,... spec (see ParsePolicy) and sets that service's
// policy, replacing one read before (from a file, or an earlier flag).
func (ps *Policies) Set(spec string) error {
	svc, p, err := ParsePolicy(spec)
	if err != nil {
		return err
	}
	ps.set(svc, p)
	return nil
}

func (ps *Policies) set(svc string, p Policy) {
	if svc == DefaultService {
		ps.Default = p
		return
	}
	if ps.Services == nil {
		ps.Services = map[string]Policy{}
	}
	ps.Services[svc] = p
}

// Merge sets every policy of other in ps, replacing those of the same
// service (flags given after a file override it).
func (ps *Policies) Merge(other Policies) {
	if other.Default != (Policy{}) {
		ps.Default = other.Default
	}
	for svc, p := range other.Services {
		ps.set(svc, p)
	}
}

// ParsePolicy parses a policy spec
//
//	SERVICE:consecutive=3,ratio=0.5,min_signals=4,min_healthy=10s,max_interruption=5s,action=rollback
//
// Every key is optional (an omitted one takes Policy's default); SERVICE
// "default" sets the policy of the services without one. The error names
// the spec and every problem in it.
func ParsePolicy(spec string) (service string, p Policy, err error) {
	svc, rest, ok := strings.Cut(spec, ":")
	svc = strings.TrimSpace(svc)
	if !ok || svc == "" {
		return "", Policy{}, fmt.Errorf("policy %q: want SERVICE:KEY=VALUE,... e.g. web:consecutive=3,ratio=0.5,max_interruption=5s,action=rollback", spec)
	}
	fields := map[string]string{}
	var errs []error
	for _, kv := range strings.Split(rest, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%q: want KEY=VALUE", kv))
			continue
		}
		fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	p, ferr := policyOf(fields)
	if err := errors.Join(append(errs, ferr)...); err != nil {
		return "", Policy{}, fmt.Errorf("policy %q: %w", spec, err)
	}
	return svc, p, nil
}

// policyOf builds and validates a policy from its keys' values as text.
func policyOf(fields map[string]string) (Policy, error) {
	var p Policy
	var errs []error
	for k, v := range fields {
		var err error
		switch k {
		case "consecutive":
			p.ConsecutiveFailures, err = positiveInt(v)
		case "ratio":
			p.FailureRatio, err = strconv.ParseFloat(v, 64)
			if err == nil && (p.FailureRatio <= 0 || p.FailureRatio > 1) {
				err = errors.New("must be in (0, 1]")
			}
		case "min_signals":
			p.MinSignals, err = positiveInt(v)
		case "min_healthy":
			p.MinHealthy, err = duration(v)
		case "max_interruption":
			p.MaxInterruption, err = duration(v)
		case "action":
			p.Action = v
			if v != ActionRollback && v != ActionReport {
				err = fmt.Errorf("must be %s or %s", ActionRollback, ActionReport)
			}
		default:
			errs = append(errs, fmt.Errorf("unknown key %q (known: %s)", k, strings.Join(policyKeys, ", ")))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %w", k, v, unwrapNum(err)))
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	if err := errors.Join(errs...); err != nil {
		return Policy{}, err
	}
	return p, p.Validate()
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, errors.New("must be a positive integer")
	}
	return n, nil
}

func duration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration such as 5s or 500ms")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

// unwrapNum turns strconv's errors into short ones.
func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("not a number")
	}
	return err
}

// ParsePoliciesYAML reads policies from YAML:
//
//	default:            # services without a policy of their own
//	  consecutive: 3
//	services:
//	  web:
//	    consecutive: 3
//	    ratio: 0.5
//	    min_signals: 4
//	    min_healthy: 10s
//	    max_interruption: 5s
//	    action: rollback
//
// Unknown keys are errors, so a typo does not silently keep a default.
func ParsePoliciesYAML(data []byte) (Policies, error) {
	var doc struct {
		Default  map[string]string            `yaml:"default"`
		Services map[string]map[string]string `yaml:"services"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return Policies{}, fmt.Errorf("read policies: %w (want top-level keys default and services)", err)
	}
	var ps Policies
	var errs []error
	if doc.Default != nil {
		p, err := policyOf(doc.Default)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy default: %w", err))
		}
		ps.Default = p
	}
	svcs := make([]string, 0, len(doc.Services))
	for svc := range doc.Services {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		p, err := policyOf(doc.Services[svc])
		if err != nil {
			errs = append(errs, fmt.Errorf("policy of service %s: %w", svc, err))
			continue
		}
		ps.set(svc, p)
	}
	if err := errors.Join(errs...); err != nil {
		return Policies{}, fmt.Errorf("read policies: %w", err)
	}
	return ps, nil
}

func formatPolicy(svc string, p Policy) string {
	var kv []string
	if p.ConsecutiveFailures != 0 {
		kv = append(kv, "consecutive="+strconv.Itoa(p.ConsecutiveFailures))
	}
	if p.FailureRatio != 0 {
		kv = append(kv, "ratio="+strconv.FormatFloat(p.FailureRatio, 'g', -1, 64))
	}
	if p.MinSignals != 0 {
		kv = append(kv, "min_signals="+strconv.Itoa(p.MinSignals))
	}
	if p.MinHealthy != 0 {
		kv = append(kv, "min_healthy="+p.MinHealthy.String())
	}
	if p.MaxInterruption != 0 {
		kv = append(kv, "max_interruption="+p.MaxInterruption.String())
	}
	if p.Action != "" {
		kv = append(kv, "action="+p.Action)
	}
	return svc + ":" + strings.Join(kv, ",")
}
