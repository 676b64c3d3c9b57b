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
	"github.com/cutover-dev/cutover/services/planner"
)

// Row is one upgrade in cutover list -o json.
type Row struct {
	ID          string    `json:"id"`
	Release     string    `json:"release"`
	Phase       string    `json:"phase"`
	Wave        int       `json:"wave"`
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// List prints the upgrades the planner knows, newest first: those in
// states (all when empty), at most limit (0: all), as text or json.
func List(ctx context.Context, js jetstream.JetStream, w io.Writer, states []string, limit int, format string) error {
	ups, err := planner.ListUpgrades(ctx, js)
	if err != nil {
		return err
	}
	rows := []Row{}
	for _, u := range ups {
		if len(states) > 0 && !slices.Contains(states, u.Phase) {
			continue
		}
		rows = append(rows, Row{ID: u.ID, Release: u.Release.Name, Phase: u.Phase, Wave: u.Wave, Reason: u.Reason, RequestedAt: u.RequestedAt, UpdatedAt: u.UpdatedAt})
	}
	slices.SortFunc(rows, func(a, b Row) int { return b.RequestedAt.Compare(a.RequestedAt) })
	if limit > 0 && len(rows) > limit {
		rows = rows[:limit]
	}
	return render.Rows(w, format, rows, "no upgrades", "ID\tRELEASE\tPHASE\tWAVE\tREQUESTED\tREASON", func(r Row) string {
		return fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", r.ID, r.Release, r.Phase, r.Wave, render.Ago(r.RequestedAt, time.Now()), OneLine(r.Reason, 70))
	})
}

// Phases are the phases an upgrade can be in, as every view names them.
var Phases = []string{planner.PhaseRunning, planner.PhasePaused, planner.PhaseRollingBack, planner.PhaseCompleted, planner.PhaseRolledBack, planner.PhaseFailed, planner.PhaseAborted}

// OneLine shortens s to one line of at most n runes.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
