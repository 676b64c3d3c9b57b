package planner

import "context"

// Crash stops the planner the way kill -9 would, as far as its peers can
// tell: it stops handling events and refreshing its lease, and releases
// nothing.
func (p *Planner) Crash() {
	if p.runStop != nil {
		p.runStop()
		<-p.runDone
		p.runStop = nil
	}
	_ = p.stepDown(context.Background())
}

// Every planner test checks that steps change only through Upgrade.edit.
func init() { verifySteps = true }
