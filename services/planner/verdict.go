package planner

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// gateAfter returns what the wave after wave waits for when the upgrade
// asked to wait for verdicts: a healthy verdict on every service wave
// changed. It returns nil when there is nothing to wait for: no gate
// asked, no wave after it, or no service changed.
func (u *Upgrade) gateAfter(wave int) *VerdictGate {
	if !u.WaitForVerdicts || len(u.waveNodes(wave+1)) == 0 {
		return nil
	}
	// The auditor judges, after a wave, every service the plan changes on
	// the wave's nodes: the services of the wave's targets.
	var services []string
	for _, key := range u.waveNodes(wave) {
		for _, t := range u.Nodes[key].Targets {
			if t.Service != "" && !slices.Contains(services, t.Service) {
				services = append(services, t.Service)
			}
		}
	}
	if len(services) == 0 {
		return nil
	}
	slices.Sort(services)
	return &VerdictGate{Wave: wave, Since: time.Now().UTC(), Waiting: services}
}

// onVerdict records the auditor's verdict on a service of the wave the next
// wave waits for. Healthy verdicts on every service let the next wave start;
// a failing or inconclusive one pauses the upgrade (a failing verdict under
// a rollback policy also brings the auditor's rollback request, which the
// planner follows from the pause). Verdicts nobody waits for change nothing.
func (p *Planner) onVerdict(ctx context.Context, e events.Event) error {
	u, rev, err := p.loadAnswered(ctx, e)
	if u == nil || err != nil {
		return err
	}
	id := u.ID
	d, err := events.DataAs[events.HealthVerdict](e)
	if err != nil {
		return err
	}
	g := u.Gate
	if g == nil || d.Wave != g.Wave || u.Rollback != nil || (u.Phase != PhaseRunning && u.Phase != PhasePaused) {
		return nil
	}
	i := slices.Index(g.Waiting, d.Service)
	if i < 0 {
		return nil // a service the wave did not change, or judged already
	}
	log := p.log.With("upgrade", id, "wave", d.Wave, "service", d.Service, "verdict", d.Verdict)
	if d.Verdict != "healthy" {
		evidence := "no evidence given"
		if len(d.Evidence) > 0 {
			evidence = d.Evidence[0]
		}
		reason := fmt.Sprintf("wave %d: the auditor judged %s %s (%s); the next wave waits. Resume to go on anyway, or roll back", d.Wave, d.Service, d.Verdict, evidence)
		u.Gate = nil
		log.Warn("verdict stops the next wave")
		if u.Phase == PhasePaused {
			u.Reason = reason + "; " + u.Reason
			return p.commit(ctx, u, rev)
		}
		return p.commit(ctx, u, rev, p.pause(e, u, reason))
	}
	g.Waiting = slices.Delete(slices.Clone(g.Waiting), i, i+1)
	log.Info("healthy verdict", "still_waiting", g.Waiting)
	if len(g.Waiting) > 0 {
		return p.commit(ctx, u, rev)
	}
	u.Gate = nil
	return p.commit(ctx, u, rev, p.advance(e, u)...)
}

// expireGate pauses an upgrade whose next wave waited longer than its
// verdict timeout: without verdicts nothing says the last wave is healthy.
func (p *Planner) expireGate(ctx context.Context, u *Upgrade, rev uint64, now time.Time) error {
	g := u.Gate
	if g == nil || u.Phase != PhaseRunning || u.Rollback != nil || now.Sub(g.Since) < u.VerdictTimeout {
		return nil
	}
	reason := fmt.Sprintf("wave %d: no verdict from the auditor within %v for %s; check that the auditor runs and receives these services' health signals, then resume to go on without them, or roll back",
		g.Wave, u.VerdictTimeout, strings.Join(g.Waiting, ", "))
	u.Gate = nil
	p.log.Warn("no verdicts in time; pausing", "upgrade", u.ID, "wave", g.Wave, "waiting", g.Waiting)
	return p.commit(ctx, u, rev, p.pause(expiredCause(u.ID, u.ID), u, reason))
}
