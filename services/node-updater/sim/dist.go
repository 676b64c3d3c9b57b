package sim

import (
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"time"
)

// Kinds of Dist.
const (
	KindFixed   = "fixed"
	KindUniform = "uniform"
	KindNormal  = "normal"
)

// Dist is a latency distribution: fixed (A), uniform between A and B, or
// normal with mean A and standard deviation B (negative draws count as 0).
// The zero Dist is a fixed 0: no latency.
type Dist struct {
	Kind string
	A, B time.Duration
}

// Fixed returns a distribution that is always d.
func Fixed(d time.Duration) Dist { return Dist{Kind: KindFixed, A: d} }

// Uniform returns a distribution uniform between lo and hi.
func Uniform(lo, hi time.Duration) Dist { return Dist{Kind: KindUniform, A: lo, B: hi} }

// Normal returns a normal distribution of mean and standard deviation sd.
func Normal(mean, sd time.Duration) Dist { return Dist{Kind: KindNormal, A: mean, B: sd} }

// Draw returns one latency from d using r.
func (d Dist) Draw(r *rand.Rand) time.Duration {
	switch d.Kind {
	case KindUniform:
		if d.B <= d.A {
			return d.A
		}
		return d.A + time.Duration(r.Int63n(int64(d.B-d.A)+1))
	case KindNormal:
		return max(0, d.A+time.Duration(r.NormFloat64()*float64(d.B)))
	default:
		return d.A
	}
}

// String formats d the way ParseDist reads it.
func (d Dist) String() string {
	switch d.Kind {
	case KindUniform:
		return d.A.String() + "-" + d.B.String()
	case KindNormal:
		return "normal:" + d.A.String() + "," + d.B.String()
	default:
		return d.A.String()
	}
}

// ParseDist reads a distribution: "50ms" (fixed), "10ms-200ms" (uniform),
// or "normal:100ms,20ms" (mean, standard deviation). "0" is no latency.
func ParseDist(s string) (Dist, error) {
	s = strings.TrimSpace(s)
	bad := func(err error) (Dist, error) {
		return Dist{}, fmt.Errorf("latency %q: %w; write 50ms (fixed), 10ms-200ms (uniform) or normal:100ms,20ms (mean,stddev)", s, err)
	}
	dur := func(v string) (time.Duration, error) {
		v = strings.TrimSpace(v)
		if n, err := strconv.Atoi(v); err == nil && n == 0 {
			return 0, nil
		}
		d, err := time.ParseDuration(v)
		if err == nil && d < 0 {
			err = fmt.Errorf("negative duration %s", v)
		}
		return d, err
	}
	if rest, ok := strings.CutPrefix(s, "normal:"); ok {
		mean, sd, found := strings.Cut(rest, ",")
		if !found {
			return bad(fmt.Errorf("normal needs a mean and a standard deviation"))
		}
		m, err := dur(mean)
		if err != nil {
			return bad(err)
		}
		v, err := dur(sd)
		if err != nil {
			return bad(err)
		}
		return Normal(m, v), nil
	}
	if lo, hi, found := strings.Cut(s, "-"); found {
		a, err := dur(lo)
		if err != nil {
			return bad(err)
		}
		b, err := dur(hi)
		if err != nil {
			return bad(err)
		}
		if b < a {
			return bad(fmt.Errorf("the upper bound is below the lower one"))
		}
		return Uniform(a, b), nil
	}
	d, err := dur(s)
	if err != nil {
		return bad(err)
	}
	return Fixed(d), nil
}

// Latencies are the per-step latency distributions of a Runtime.
type Latencies struct {
	// Pull is the time a pull of an image not yet on the node takes.
	Pull Dist
	// Stop is the time a running container takes to stop.
	Stop Dist
	// Start is the time a start call takes.
	Start Dist
	// Health is the time from start until the container reports healthy
	// (or unhealthy, when it fails its health).
	Health Dist
}

// Failures are per-step failure probabilities (0 to 1) of a Runtime. They
// apply to images the node did not run when it was created.
type Failures struct {
	// Pull fails a pull.
	Pull float64
	// Start fails a start of a new container.
	Start float64
	// Health makes a new container never healthy: it turns unhealthy once
	// its health latency has passed.
	Health float64
}

// Spread returns Failures that fail one replacement in rate of them, the
// rate split evenly across pull, start and health.
func Spread(rate float64) Failures {
	if rate <= 0 {
		return Failures{}
	}
	if rate >= 1 {
		return Failures{Pull: 1, Start: 1, Health: 1}
	}
	// 1 - (1-p)^3 = rate
	p := 1 - math.Cbrt(1-rate)
	return Failures{Pull: p, Start: p, Health: p}
}
