// Package render prints cutover events as one human line each, for
// `cutover watch`, `cutover apply --watch` and the demo.
package render

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover-dev/cutover/events"
)

// Line describes an event in one line: time, short type, where, and what.
// Its where column is at least 14 characters wide; Lines keeps a column
// wide enough for every node of an upgrade.
func Line(e events.Event) string {
	return NewLines().Line(e)
}

// minWhere is the narrowest where column: node names like compute-0001
// and every service's name fit.
const minWhere = 14

// Lines writes events as Line does, one after the other, with the where
// column as wide as the longest name it knows: the names NewLines and Fit
// were given (the nodes of an upgrade's plan, known when a watch starts),
// the node lists of the plans and waves it rendered, and each event's own
// node or service. So Kolla-style node names
// (compute-eu-west-1-rack12-node031) keep the lines aligned; a name is
// never cut, and a longer one than any known widens the column from its
// line on.
type Lines struct {
	width int
}

// NewLines returns Lines whose where column fits names.
func NewLines(names ...string) *Lines {
	l := &Lines{width: minWhere}
	l.Fit(names...)
	return l
}

// Fit widens the where column to hold each of names.
func (l *Lines) Fit(names ...string) {
	for _, n := range names {
		l.width = max(l.width, utf8.RuneCountInString(n))
	}
}

// FitEvents widens the where column to hold every name evs show or list,
// so a timeline known in advance (cutover history) aligns from its first line.
func (l *Lines) FitEvents(evs ...events.Event) {
	for _, e := range evs {
		l.Fit(where(e))
		l.Fit(nodesNamed(e)...)
	}
}

// Line describes e in one line: time, short type, where, and what.
func (l *Lines) Line(e events.Event) string {
	l.FitEvents(e)
	return fmt.Sprintf("%s  %-26s %-*s %s", e.Time().Local().Format("15:04:05.000"), strings.TrimPrefix(e.Type(), "dev.cutover."), l.width, where(e), detail(e))
}

// where is the node an event concerns, or else the service that sent it.
func where(e events.Event) string {
	if n := events.NodeID(e); n != "" {
		return n
	}
	return strings.TrimPrefix(e.Source(), "/cutover/")
}

// nodesNamed returns the nodes a plan or a wave names, whose events follow.
func nodesNamed(e events.Event) []string {
	switch e.Type() {
	case events.TypeUpgradePlanned:
		d, err := events.DataAs[events.UpgradePlanned](e)
		if err != nil {
			return nil
		}
		var out []string
		for _, w := range d.Waves {
			out = append(out, w.Nodes...)
		}
		for _, c := range d.Changes {
			out = append(out, c.Node)
		}
		return out
	case events.TypeWaveStarted:
		d, err := events.DataAs[events.WaveStarted](e)
		if err != nil {
			return nil
		}
		return d.Nodes
	}
	return nil
}

// Final reports whether e ends an upgrade, and whether it ended well.
func Final(e events.Event) (final, ok bool) {
	switch e.Type() {
	case events.TypeUpgradeCompleted:
		return true, true
	case events.TypeUpgradeFailed, events.TypeUpgradePaused, events.TypeUpgradeAborted:
		return true, false
	}
	return false, false
}

func detail(e events.Event) string {
	s, ok := events.Lookup(e.Type())
	if !ok {
		return ""
	}
	d := s.New()
	if err := json.Unmarshal(e.Data(), d); err != nil {
		return ""
	}
	switch v := d.(type) {
	case *events.UpgradeRequested:
		return fmt.Sprintf("release %s (%s)", v.Release.Name, Plural(len(v.Release.Services), "service"))
	case *events.UpgradePlanned:
		if v.Part > 1 {
			return fmt.Sprintf("plan part %d of %d: %d more containers change", v.Part, v.Parts, len(v.Changes))
		}
		if v.Parts > 1 {
			return fmt.Sprintf("plan part 1 of %d: %d containers change (more follow), %d unchanged, %d waves", v.Parts, len(v.Changes), v.Unchanged, len(v.Waves))
		}
		return fmt.Sprintf("%s change, %d unchanged, %s", Plural(len(v.Changes), "container"), v.Unchanged, Plural(len(v.Waves), "wave"))
	case *events.UpgradeStarted:
		return Plural(v.Waves, "wave")
	case *events.WaveStarted:
		return fmt.Sprintf("wave %d: %s", v.Wave, strings.Join(v.Nodes, ", "))
	case *events.WaveCompleted:
		return fmt.Sprintf("wave %d: %d replaced, %d unchanged", v.Wave, v.Replaced, v.Unchanged)
	case *events.UpgradeCompleted:
		return fmt.Sprintf("release %s: %d replaced, %d unchanged in %s", v.Release, v.Replaced, v.Unchanged, Duration(time.Duration(v.DurationMs)*time.Millisecond))
	case *events.UpgradeFailed:
		return v.Reason
	case *events.UpgradePaused:
		return v.Reason
	case *events.UpgradeAborted:
		return v.Reason
	case *events.NodeUpdateRequested:
		names := make([]string, len(v.Containers))
		for i, c := range v.Containers {
			names[i] = c.Container + " -> " + c.Image
		}
		prefix := ""
		if v.Rollback {
			prefix = "rollback: "
		}
		return prefix + strings.Join(names, ", ")
	case *events.ContainerPulled:
		return fmt.Sprintf("%s: %s in %s", v.Container, v.Image, Duration(time.Duration(v.DurationMs)*time.Millisecond))
	case *events.ContainerDraining:
		return v.Container
	case *events.ContainerDrained:
		return v.Container + ": out of the load balancer (" + v.Agent + ")"
	case *events.ContainerPulling:
		return fmt.Sprintf("%s: %s, %d of %s", v.Container, v.Image, v.LayersDone, Plural(v.LayersTotal, "layer"))
	case *events.ContainerPullRetrying:
		return fmt.Sprintf("%s: pulling %s failed (attempt %d of %d): %s; trying again in %s", v.Container, v.Image, v.Attempt, v.Attempts, v.Error, Duration(time.Duration(v.RetryInMs)*time.Millisecond))
	case *events.ContainerReplaced:
		if v.Result == events.ResultUnchanged {
			return v.Container + ": already runs " + v.ToImage
		}
		out := fmt.Sprintf("%s: %s -> %s, interruption %s", v.Container, v.FromImage, v.ToImage, interruption(v.InterruptionMs, v.InterruptionUnknown))
		if v.Recovered {
			out += " (finished by recovery after a node-updater restart)"
		}
		return out
	case *events.ContainerReverted:
		if v.Step == "recovery" {
			return fmt.Sprintf("%s: %s; old container serves again, interruption %s", v.Container, v.Reason, interruption(v.InterruptionMs, v.InterruptionUnknown))
		}
		return fmt.Sprintf("%s: %s failed (%s); old container serves again", v.Container, v.Step, v.Reason)
	case *events.NodeUpdateCompleted:
		return Plural(len(v.Results), "container") + " done"
	case *events.NodeUpdateFailed:
		return fmt.Sprintf("%s failed at %s: %s", v.Container, v.Step, v.Error)
	case *events.NodeHeartbeat:
		return fmt.Sprintf("%s (%s)", Plural(v.Containers, "container"), v.Runtime)
	case *events.MigrationRequested:
		phase := v.Phase
		if phase == "" {
			phase = "all"
		}
		if c := v.Command; c != nil {
			repeat := ""
			if c.Repeat {
				repeat = ", run until it exits 0"
			}
			return fmt.Sprintf("%s: %s: %s in %s%s", v.Service, phase, strings.Join(c.Command, " "), c.Image, repeat)
		}
		return fmt.Sprintf("%s: %s migrations from %s", v.Service, phase, v.Source)
	case *events.MigrationRollbackRequested:
		return fmt.Sprintf("%s: back to version %d", v.Database, v.ToVersion)
	case *events.MigrationStarted:
		return fmt.Sprintf("%s: from version %d, snapshot %s", v.Database, v.FromVersion, v.SnapshotID)
	case *events.MigrationRollbackCompleted:
		return fmt.Sprintf("%s: version %d -> %d through %s", v.Database, v.FromVersion, v.ToVersion, v.Path)
	case *events.HealthSignal:
		return fmt.Sprintf("%s on %s: %s %s", v.Service, v.Node, v.Status, v.Message)
	case *events.MigrationStatusRequested:
		return fmt.Sprintf("%s (%s): state asked", v.Database, v.Driver)
	case *events.MigrationStatusReported:
		if v.Error != "" {
			return v.Database + ": " + v.Error
		}
		dirty := ""
		if v.Dirty {
			dirty = " (dirty)"
		}
		return fmt.Sprintf("%s: version %d%s, %s applied, %s pending", v.Database, v.Version, dirty, Plural(v.Applied, "file"), Plural(len(v.Pending), "file"))
	case *events.UpgradeControlAnswered:
		verdict := "accepted"
		if !v.Accepted {
			verdict = "refused"
		}
		return fmt.Sprintf("%s %s: %s", v.Action, verdict, strings.TrimPrefix(v.Reason, "refused: "))
	case *events.UpgradeControlRequested:
		return fmt.Sprintf("%s requested by %s: %s", v.Action, v.RequestedBy, v.Reason)
	case *events.NodeDrainRequested:
		return fmt.Sprintf("wave %d: evacuate before %s restart", v.Wave, strings.Join(v.Containers, ", "))
	case *events.NodeDrained:
		return fmt.Sprintf("drained by %s %s", v.Evacuator, v.Message)
	case *events.MigrationCompleted:
		if c := v.Command; c != nil {
			return fmt.Sprintf("%s: schema %s -> %s, exit %d after %s (snapshot %s)", v.Database, c.FromSchema, c.ToSchema, c.ExitCode, Plural(c.Runs, "run"), v.SnapshotID)
		}
		return fmt.Sprintf("%s: version %d -> %d (snapshot %s)", v.Database, v.FromVersion, v.ToVersion, v.SnapshotID)
	case *events.MigrationFailed:
		what := v.Error
		if v.File != "" {
			what = v.File + ": " + what
		}
		if c := v.Command; c != nil && len(c.LogTail) > 0 {
			what += fmt.Sprintf(" (last output: %s)", c.LogTail[len(c.LogTail)-1])
		}
		return fmt.Sprintf("%s: %s; %s", v.Database, what, v.State)
	case *events.HealthVerdict:
		return fmt.Sprintf("%s wave %d: %s", v.Service, v.Wave, v.Verdict)
	case *events.RollbackRequested:
		return v.Reason
	case *events.RollbackCompleted:
		switch {
		case v.Result == "failed":
			return fmt.Sprintf("rollback failed after %s returned (%s): %s", Plural(len(v.Nodes), "node"), List(v.Nodes), v.Reason)
		case len(v.Nodes) == 0:
			return "rollback completed: no node had changed; " + v.Reason
		}
		return fmt.Sprintf("rollback completed: %s back on their previous images (%s); %s", Plural(len(v.Nodes), "node"), List(v.Nodes), v.Reason)
	case *events.EventRejected:
		f := v.Field
		if f != "" {
			f += ": "
		}
		return fmt.Sprintf("message %d on %s refused: %s%s", v.StreamSequence, v.Subject, f, v.Reason)
	}
	return ""
}

// interruption renders a container's measured interruption; unknown says
// part of it could not be measured, so it was longer.
func interruption(ms int64, unknown bool) string {
	d := Duration(time.Duration(ms) * time.Millisecond)
	if unknown {
		return "unknown (more than " + d + ")"
	}
	return d
}
