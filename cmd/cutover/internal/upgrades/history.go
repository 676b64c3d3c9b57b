package upgrades

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/planner"
)

// Events reads an upgrade's events from the stream, oldest first.
// The stream is read to its end as it was when the read began.
func Events(ctx context.Context, js jetstream.JetStream, id string) ([]events.Event, error) {
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

// Auditor reads the auditor's history API at Base, with Token when set.
type Auditor struct {
	Base, Token string
}

// get GETs path and decodes its JSON body into v.
func (a Auditor) get(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Base+path, nil)
	if err != nil {
		return fmt.Errorf("--auditor %q: %w", a.Base, err)
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask the auditor at %s: %w", a.Base, err)
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
		return fmt.Errorf("the auditor at %s answered %s: %s%s", a.Base, resp.Status, eb.Error, hint)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode the auditor's answer: %w", err)
	}
	return nil
}

// Resolve finds the upgrade arg names among those the auditor recorded:
// an id, a unique prefix of one, or a release name one upgrade has.
func (a Auditor) Resolve(ctx context.Context, arg string) (string, error) {
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
	return Match(list, arg)
}

// Events reads an upgrade's events, oldest first.
func (a Auditor) Events(ctx context.Context, id string) ([]events.Event, error) {
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

// Print writes events as text lines or, for json, as a JSON array of
// CloudEvents.
func Print(w io.Writer, evs []events.Event, format string) error {
	if format == "json" {
		if evs == nil {
			evs = []events.Event{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(evs)
	}
	lines := render.NewLines()
	lines.FitEvents(evs...)
	for _, e := range evs {
		fmt.Fprintln(w, lines.Line(e))
	}
	return nil
}

// History reads the events of the upgrade arg names from the stream,
// oldest first.
func History(ctx context.Context, js jetstream.JetStream, arg string) ([]events.Event, error) {
	id, err := Resolve(ctx, js, arg)
	if err != nil {
		return nil, err
	}
	return Events(ctx, js, id)
}

// AuditorHistory reads the events of the upgrade arg names from the
// auditor's history API at base, oldest first. Its bearer token is in
// tokenFile, or else in CUTOVER_HTTP_TOKEN.
func AuditorHistory(ctx context.Context, base, tokenFile, arg string) ([]events.Event, error) {
	token := os.Getenv("CUTOVER_HTTP_TOKEN")
	if tokenFile != "" {
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--auditor-token-file: %w", err)
		}
		token = strings.TrimSpace(string(raw))
	}
	a := Auditor{Base: strings.TrimSuffix(base, "/"), Token: token}
	id, err := a.Resolve(ctx, arg)
	if err != nil {
		return nil, err
	}
	return a.Events(ctx, id)
}
