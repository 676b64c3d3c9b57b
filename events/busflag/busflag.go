// Package busflag declares the command-line flags, and the environment
// variables behind their defaults, with which every cutover binary sizes the
// CUTOVER stream and KV buckets: replicas and retention limits. Only main
// packages use it (the services take an events.SetupConfig).
package busflag

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// Environment variables giving the flags' defaults.
const (
	EnvReplicas          = "CUTOVER_STREAM_REPLICAS"
	EnvRaiseReplicas     = "CUTOVER_RAISE_STREAM_REPLICAS"
	EnvMaxAge            = "CUTOVER_STREAM_MAX_AGE"
	EnvMaxBytes          = "CUTOVER_STREAM_MAX_BYTES"
	EnvMaxMsgsPerSubject = "CUTOVER_STREAM_MAX_MSGS_PER_SUBJECT"
)

// Flags holds the parsed values.
type Flags struct {
	replicas          int
	raise             bool
	maxAge            time.Duration
	maxBytes          size
	maxMsgsPerSubject int64
	envErrs           []error
}

// Register adds --stream-replicas, --raise-stream-replicas,
// --stream-max-age, --stream-max-bytes and --stream-max-msgs-per-subject to
// fs, each defaulting to its environment variable when set.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	f.replicas = envInt(f, EnvReplicas, 1)
	f.raise = envBool(f, EnvRaiseReplicas)
	f.maxAge = envDuration(f, EnvMaxAge, events.DefaultMaxAge)
	f.maxBytes = size(events.DefaultMaxBytes)
	if v := os.Getenv(EnvMaxBytes); v != "" {
		if err := f.maxBytes.Set(v); err != nil {
			f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: %w", EnvMaxBytes, v, err))
		}
	}
	f.maxMsgsPerSubject = int64(envInt(f, EnvMaxMsgsPerSubject, events.DefaultMaxMsgsPerSubject))
	fs.IntVar(&f.replicas, "stream-replicas", f.replicas,
		"JetStream `replicas` of the CUTOVER stream and KV buckets: 1 for one server, 3 in a cluster (env "+EnvReplicas+")")
	fs.BoolVar(&f.raise, "raise-stream-replicas", f.raise,
		"raise an existing stream or bucket with fewer replicas to --stream-replicas (never lowers; env "+EnvRaiseReplicas+")")
	fs.DurationVar(&f.maxAge, "stream-max-age", f.maxAge,
		"how long the stream keeps events, applied when it is created (env "+EnvMaxAge+")")
	fs.Var(&f.maxBytes, "stream-max-bytes",
		"the stream's `size` limit per replica, e.g. 10GiB; the oldest events go first; applied when it is created (env "+EnvMaxBytes+")")
	fs.Int64Var(&f.maxMsgsPerSubject, "stream-max-msgs-per-subject", f.maxMsgsPerSubject,
		"messages kept per subject (bounds a flood of heartbeats or health signals), applied when the stream is created (env "+EnvMaxMsgsPerSubject+")")
	return f
}

// Config returns the set-up configuration, or every invalid value at once.
func (f *Flags) Config(log *slog.Logger) (events.SetupConfig, error) {
	cfg := events.SetupConfig{
		Replicas:          f.replicas,
		RaiseReplicas:     f.raise,
		MaxAge:            f.maxAge,
		MaxBytes:          int64(f.maxBytes),
		MaxMsgsPerSubject: f.maxMsgsPerSubject,
		Logger:            log,
	}
	errs := append([]error(nil), f.envErrs...)
	if f.replicas < 1 {
		errs = append(errs, fmt.Errorf("--stream-replicas %d: want 1 to 5", f.replicas))
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

func envInt(f *Flags, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: want a whole number", name, v))
		return def
	}
	return n
}

func envBool(f *Flags, name string) bool {
	v := os.Getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: want true or false", name, v))
	}
	return b
}

func envDuration(f *Flags, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f.envErrs = append(f.envErrs, fmt.Errorf("%s=%q: want a duration, e.g. 720h", name, v))
		return def
	}
	return d
}

// size is a byte count written as a number with an optional binary unit
// (KiB, MiB, GiB, TiB; K, M, G, T mean the same).
type size int64

func (s *size) String() string {
	if s == nil {
		return "0"
	}
	n := int64(*s)
	for _, u := range []struct {
		name  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *size) Set(v string) error {
	num := strings.TrimSpace(v)
	shift := uint(0)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}, {"B", 0}} {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return fmt.Errorf("size %q: want bytes or a number with KiB, MiB, GiB or TiB, e.g. 10GiB", v)
	}
	*s = size(n << shift)
	return nil
}
