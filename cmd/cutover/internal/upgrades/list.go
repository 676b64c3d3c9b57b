package upgrades

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/planner"
)

// Row is one upgrade in cutover list -o json.
type Row struct {
	ID      string `json:"id"`
	Release string `json:"release"`
	Phase   string `json:"phase"`
	// Wave and Reason come from the planner; an upgrade only the auditor
	// knows has neither.
	Wave        int       `json:"wave"`
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Source says where Phase comes from: planner (its live state) or
	// auditor (its history: the planner no longer holds the upgrade).
	Source string `json:"source"`
}

// Sources of a Row.
const (
	SourcePlanner = "planner"
	SourceAuditor = "auditor"
)

// ListOptions select and format what List prints.
type ListOptions struct {
	// States keeps the upgrades in these phases (all when empty).
	States []string
	// Limit keeps the newest this many (0: all).
	Limit int
	// Format is text or json.
	Format string
	// Auditor, when set, adds the upgrades it recorded that the planner
	// no longer holds.
	Auditor *Auditor
}

// List prints the upgrades the planner knows, newest first, and with
// o.Auditor those only the auditor still knows.
func List(ctx context.Context, js jetstream.JetStream, w io.Writer, o ListOptions) error {
	ups, err := planner.ListUpgrades(ctx, js)
	if err != nil {
		return err
	}
	var all []Row
	held := map[string]bool{}
	for _, u := range ups {
		held[u.ID] = true
		all = append(all, Row{ID: u.ID, Release: u.Release.Name, Phase: u.Phase, Wave: u.Wave, Reason: u.Reason, RequestedAt: u.RequestedAt, UpdatedAt: u.UpdatedAt, Source: SourcePlanner})
	}
	if o.Auditor != nil {
		audited, err := o.Auditor.Upgrades(ctx)
		if err != nil {
			return err
		}
		for _, u := range audited {
			if !held[u.ID] {
				all = append(all, Row{ID: u.ID, Release: u.Release, Phase: string(u.State), RequestedAt: u.FirstTime, UpdatedAt: u.LastTime, Source: SourceAuditor})
			}
		}
	}
	rows := []Row{}
	for _, r := range all {
		if len(o.States) == 0 || slices.Contains(o.States, r.Phase) {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(a, b Row) int { return b.RequestedAt.Compare(a.RequestedAt) })
	if o.Limit > 0 && len(rows) > o.Limit {
		rows = rows[:o.Limit]
	}
	return render.Rows(w, o.Format, rows, "no upgrades", "ID\tRELEASE\tPHASE\tWAVE\tREQUESTED\tREASON", func(r Row) string {
		if r.Source == SourceAuditor {
			return fmt.Sprintf("%s\t%s\t%s\t-\t%s\t%s", r.ID, r.Release, r.Phase, render.Ago(r.RequestedAt, time.Now()), "from the auditor's history: the planner no longer holds it")
		}
		return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", r.ID, r.Release, r.Phase, r.Wave, render.Ago(r.RequestedAt, time.Now()), OneLine(r.Reason, 70))
	})
}

// Phases are the phases an upgrade can be in, as every view names them.
var Phases = []string{planner.PhaseRunning, planner.PhasePaused, planner.PhaseRollingBack, planner.PhaseCompleted, planner.PhaseRolledBack, planner.PhaseFailed, planner.PhaseAborted}

// AuditorStates are the states the auditor may give an upgrade that no
// planner phase names: it saw the request or plan but nothing after, the
// rollback failed, or it holds only node or migration events of it.
var AuditorStates = []string{string(auditor.StateRequested), string(auditor.StatePlanned), string(auditor.StateRollbackFailed), string(auditor.StateUnknown)}

// OneLine shortens s to one line of at most n runes.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
