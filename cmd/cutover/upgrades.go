package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// upgradeRow is one upgrade in cutover list -o json.
type upgradeRow struct {
	ID          string    `json:"id"`
	Release     string    `json:"release"`
	Phase       string    `json:"phase"`
	Wave        int       `json:"wave"`
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func newListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list [--state PHASE]",
		Aliases: []string{"ls"},
		Short:   "list upgrades, newest first",
		Example: "  cutover list\n  cutover list --state running,paused\n  cutover list -o json | jq -r '.[].id'",
		Args:    noArgs,
	}
	states := cmd.Flags().StringSlice("state", nil, "only upgrades in these phases: "+strings.Join(allPhases, ", "))
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(allPhases, cobra.ShellCompDirectiveNoFileComp))
	limit := cmd.Flags().Int("limit", 0, "show at most this many (0: all)")
	output := outputFlag(cmd, "text", "json")
	nopts := natsFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		for _, s := range *states {
			if !slices.Contains(allPhases, s) {
				return usageErrorf("--state %q is not a phase; use %s", s, strings.Join(allPhases, ", "))
			}
		}
		ctx := cmd.Context()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return err
		}
		defer nc.Close()
		ups, err := planner.ListUpgrades(ctx, js)
		if err != nil {
			return err
		}
		rows := []upgradeRow{}
		for _, u := range ups {
			if len(*states) > 0 && !slices.Contains(*states, u.Phase) {
				continue
			}
			rows = append(rows, upgradeRow{ID: u.ID, Release: u.Release.Name, Phase: u.Phase, Wave: u.Wave, Reason: u.Reason, RequestedAt: u.RequestedAt, UpdatedAt: u.UpdatedAt})
		}
		slices.SortFunc(rows, func(a, b upgradeRow) int { return b.RequestedAt.Compare(a.RequestedAt) })
		if *limit > 0 && len(rows) > *limit {
			rows = rows[:*limit]
		}
		w := cmd.OutOrStdout()
		if output.value == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "no upgrades")
			return nil
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRELEASE\tPHASE\tWAVE\tREQUESTED\tREASON")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Release, r.Phase, r.Wave, render.Ago(r.RequestedAt, time.Now()), oneLine(r.Reason, 70))
		}
		return tw.Flush()
	}
	return cmd
}

// allPhases are the phases an upgrade can be in, as every view names them.
var allPhases = []string{planner.PhaseRunning, planner.PhasePaused, planner.PhaseRollingBack, planner.PhaseCompleted, planner.PhaseRolledBack, planner.PhaseFailed, planner.PhaseAborted}

// oneLine shortens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func newHistoryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history ID|PREFIX|RELEASE",
		Short: "an upgrade's events, oldest first (the auditor's timeline)",
		Long: `Print every event of one upgrade, oldest first: the same timeline the
auditor records. The events come from the event stream (kept 30 days by
default); with --auditor they come from the auditor's history API instead,
which keeps them as long as its database does. -o json prints a JSON array
of CloudEvents.`,
		Example: "  cutover history 019a7c3e\n  cutover history 2025.1.1 -o json | jq '.[].type'\n  cutover history 019a7c3e --auditor http://127.0.0.1:8080",
		Args:    exactArgs(1, "one upgrade: its id, a unique prefix of it, or its release name"),
	}
	output := outputFlag(cmd, "text", "json")
	auditor := cmd.Flags().String("auditor", envOr("CUTOVER_AUDITOR", ""), "read from this auditor's HTTP API (cutover dev --http, auditor --http) instead of the stream (env CUTOVER_AUDITOR)")
	tokenFile := cmd.Flags().String("auditor-token-file", envOr("CUTOVER_HTTP_TOKEN_FILE", ""), "`FILE` holding the bearer token the auditor's API wants (or its value in CUTOVER_HTTP_TOKEN)")
	nopts := natsFlags(cmd)
	cmd.ValidArgsFunction = completeUpgrades(nopts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		var evs []events.Event
		var err error
		if *auditor != "" {
			token := os.Getenv("CUTOVER_HTTP_TOKEN")
			if *tokenFile != "" {
				raw, err := os.ReadFile(*tokenFile)
				if err != nil {
					return fmt.Errorf("--auditor-token-file: %w", err)
				}
				token = strings.TrimSpace(string(raw))
			}
			a := auditorAPI{base: strings.TrimSuffix(*auditor, "/"), token: token}
			id, err := a.resolve(ctx, args[0])
			if err != nil {
				return err
			}
			evs, err = a.events(ctx, id)
			if err != nil {
				return err
			}
		} else {
			nc, js, cerr := nopts.connect(ctx)
			if cerr != nil {
				return cerr
			}
			defer nc.Close()
			id, rerr := upgrades.Resolve(ctx, js, args[0])
			if rerr != nil {
				return rerr
			}
			evs, err = upgradeEvents(ctx, js, id)
		}
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if output.value == "json" {
			if evs == nil {
				evs = []events.Event{}
			}
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(evs)
		}
		for _, e := range evs {
			fmt.Fprintln(w, render.Line(e))
		}
		return nil
	}
	return cmd
}

// streamEvents reads an upgrade's events from the stream, oldest first.
// The stream is read to its end as it was when the read began.
func upgradeEvents(ctx context.Context, js jetstream.JetStream, id string) ([]events.Event, error) {
	st, err := js.Stream(ctx, events.StreamName)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", events.StreamName, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := js.OrderedConsumer(ctx, events.StreamName, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectAll}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
	}
	var out []events.Event
	for {
		batch, err := cons.FetchNoWait(500)
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		n := 0
		var seq uint64
		for msg := range batch.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				seq = md.Sequence.Stream
			}
			e, err := events.Decode(msg.Headers(), msg.Data())
			if err != nil || events.UpgradeOf(e) != id || e.Type() == events.TypeNodeHeartbeat {
				continue
			}
			out = append(out, e)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("read stream %s: %w", events.StreamName, err)
		}
		if seq >= last || n == 0 {
			return out, nil
		}
	}
}

// auditorAPI reads the auditor's history API.
type auditorAPI struct {
	base, token string
}

// get GETs path and decodes its JSON body into v.
func (a auditorAPI) get(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return fmt.Errorf("--auditor %q: %w", a.base, err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask the auditor at %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read the auditor's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &eb)
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (give its token with --auditor-token-file or CUTOVER_HTTP_TOKEN)"
		}
		return fmt.Errorf("the auditor at %s answered %s: %s%s", a.base, resp.Status, eb.Error, hint)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode the auditor's answer: %w", err)
	}
	return nil
}

// resolve finds the upgrade arg names among those the auditor recorded:
// an id, a unique prefix of one, or a release name one upgrade has.
func (a auditorAPI) resolve(ctx context.Context, arg string) (string, error) {
	var ups []struct {
		ID      string `json:"id"`
		Release string `json:"release"`
		State   string `json:"state"`
	}
	if err := a.get(ctx, "/api/upgrades", &ups); err != nil {
		return "", err
	}
	var list []*planner.Upgrade
	for _, u := range ups {
		list = append(list, &planner.Upgrade{ID: u.ID, Release: events.Release{Name: u.Release}, Phase: u.State})
	}
	return upgrades.Match(list, arg)
}

// events reads an upgrade's events, oldest first.
func (a auditorAPI) events(ctx context.Context, id string) ([]events.Event, error) {
	var raws []json.RawMessage
	if err := a.get(ctx, "/api/upgrades/"+url.PathEscape(id)+"/events", &raws); err != nil {
		return nil, err
	}
	out := make([]events.Event, 0, len(raws))
	for _, r := range raws {
		var e events.Event
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, fmt.Errorf("decode an event from the auditor: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// completeUpgrades completes an upgrade argument with the ids and release
// names the planner knows (cutover completion), asking NATS for at most 2s.
func completeUpgrades(nopts *natsOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		nc, js, err := nopts.connect(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer nc.Close()
		ups, err := planner.ListUpgrades(ctx, js)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, u := range ups {
			if strings.HasPrefix(u.ID, toComplete) {
				out = append(out, cobra.CompletionWithDesc(u.ID, u.Release.Name+", "+u.Phase))
			}
			if u.Release.Name != "" && strings.HasPrefix(u.Release.Name, toComplete) && !slices.Contains(out, u.Release.Name) {
				out = append(out, u.Release.Name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
