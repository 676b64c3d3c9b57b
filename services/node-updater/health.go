package nodeupdater

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// healthPoll is how often the health gate inspects a container. Docker
// updates health at the healthcheck's own interval (a second in the demo
// images), so polling faster only costs engine calls.
const healthPoll = 250 * time.Millisecond

// healthGate says when a started container counts as healthy.
type healthGate struct {
	// minHealthy is how long a container without a Docker healthcheck must
	// run without exiting or restarting.
	minHealthy time.Duration
	// hold is how long a container with a healthcheck must stay healthy
	// once it is; 0 accepts the first healthy report.
	hold time.Duration
	// timeout bounds the whole wait.
	timeout time.Duration
	// fresh marks a container that was just created: any automatic restart
	// counts, even one before the first inspection.
	fresh bool
	// probe, when set, judges a container whose image has no Docker
	// healthcheck: it counts as healthy once the probe passes and has kept
	// passing for hold.
	probe *events.Probe
}

// gateFor returns the gate of a command's target, with defaults.
func gateFor(t events.ContainerTarget, fresh bool) healthGate {
	g := healthGate{
		minHealthy: DefaultMinHealthy,
		timeout:    DefaultHealthTimeout,
		fresh:      fresh,
	}
	if t.MinHealthyMs > 0 {
		g.minHealthy = time.Duration(t.MinHealthyMs) * time.Millisecond
		// An explicit minimum also holds a healthchecked container: the
		// contract says how long it must *stay* healthy.
		g.hold = g.minHealthy
	}
	if t.HealthTimeoutMs > 0 {
		g.timeout = time.Duration(t.HealthTimeoutMs) * time.Millisecond
	}
	if t.Probe != nil {
		p := *t.Probe
		g.probe = &p
	}
	return g
}

// waitHealthy polls a started container until it passes the gate. It fails
// fast when the container exits, restarts or turns unhealthy, and after the
// gate's timeout. When ctx itself ends it returns ctx's error.
func (u *Updater) waitHealthy(ctx context.Context, id string, g healthGate) error {
	wctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	every := healthPoll
	if g.probe != nil {
		every = probeInterval(*g.probe)
	}
	timer := time.NewTimer(every)
	defer timer.Stop()

	begin := time.Now()
	var first, last Container
	var healthySince time.Time
	var probeErr error
	for i := 0; ; i++ {
		c, err := u.rt.Inspect(wctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if wctx.Err() == nil {
				return fmt.Errorf("health gate: inspect %s: %w", shortID(id), err)
			}
		} else {
			if i == 0 {
				first = c
				if g.fresh {
					first.RestartCount = 0
				}
			}
			last = c
			if g.probe != nil && !c.Healthcheck && c.Running && !c.Restarting {
				// The probe stands in for the missing healthcheck.
				err := u.runProbe(wctx, c, *g.probe)
				if err != nil && wctx.Err() != nil && probeErr != nil {
					// The gate's deadline cut this probe short: the last
					// probe that answered says more about why it failed.
					err = probeErr
				}
				probeErr = err
				c.Healthcheck, c.Health = true, HealthHealthy
				if probeErr != nil {
					c.Health = HealthStarting
				}
			}
			ok, err := g.judge(first, c, begin, &healthySince)
			if err != nil || ok {
				return err
			}
		}
		// Without a healthcheck the verdict is due when minHealthy has
		// passed: look then rather than up to a poll period later.
		wait := every
		if !last.Healthcheck && g.probe == nil {
			if left := g.minHealthy - time.Since(runningSince(last, begin)); left > 0 && left < wait {
				wait = left + time.Millisecond
			}
		}
		timer.Reset(wait)
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if probeErr != nil {
				return fmt.Errorf("health gate: not healthy after %s: %s probe: %w", g.timeout, g.probe.Type, probeErr)
			}
			return fmt.Errorf("health gate: not healthy after %s (state %s%s)", g.timeout, last.State, healthSuffix(last))
		case <-timer.C:
		}
	}
}

// judge decides on one observation: healthy (true), not yet (false, nil),
// or failed (an error saying why).
func (g healthGate) judge(first, c Container, begin time.Time, healthySince *time.Time) (bool, error) {
	switch {
	case c.Restarting || c.RestartCount > first.RestartCount || (!first.StartedAt.IsZero() && !c.StartedAt.Equal(first.StartedAt)):
		return false, fmt.Errorf("health gate: container restarted (exit code %d, %d restarts)", c.ExitCode, c.RestartCount)
	case !c.Running:
		return false, fmt.Errorf("health gate: container exited with code %d (state %s)", c.ExitCode, c.State)
	case c.Healthcheck && c.Health == HealthUnhealthy:
		return false, fmt.Errorf("health gate: container is unhealthy%s", outputSuffix(c.HealthOutput))
	case c.Healthcheck && c.Health == HealthHealthy:
		if healthySince.IsZero() {
			*healthySince = time.Now()
		}
		return time.Since(*healthySince) >= g.hold, nil
	case c.Healthcheck:
		*healthySince = time.Time{}
		return false, nil
	default:
		return time.Since(runningSince(c, begin)) >= g.minHealthy, nil
	}
}

// runningSince is when the container's current run began: the engine's
// StartedAt, so the time the start call itself took counts; but never
// before the gate began minus a second, nor after now, so a skewed engine
// clock can neither shorten the rule much nor stall it.
func runningSince(c Container, begin time.Time) time.Time {
	t := c.StartedAt
	if t.IsZero() || t.After(time.Now()) || t.Before(begin.Add(-time.Second)) {
		return begin
	}
	return t
}

func healthSuffix(c Container) string {
	if c.Health == "" {
		return ""
	}
	return ", health " + c.Health + outputSuffix(c.HealthOutput)
}

func outputSuffix(out string) string {
	if out == "" {
		return ""
	}
	if len(out) > 200 {
		out = out[:200] + "..."
	}
	return fmt.Sprintf(": last check said %q", out)
}
