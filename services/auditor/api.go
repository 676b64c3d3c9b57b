package auditor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
)

// NewAPI returns the HTTP JSON API over a history:
//
//	GET /api/upgrades              every upgrade's summary, newest first
//	GET /api/upgrades/{id}         one upgrade: {"upgrade": summary, "events": [records]}
//	GET /api/upgrades/{id}/events  the upgrade's CloudEvents, as received, oldest first
//
// An unknown upgrade id answers 404 with {"error": "..."} naming the id.
// A nil logger means slog.Default().
func NewAPI(h History, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	api := &api{h: h, log: logger.With("component", "api")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/upgrades", api.upgrades)
	mux.HandleFunc("GET /api/upgrades/{id}", api.upgrade)
	mux.HandleFunc("GET /api/upgrades/{id}/events", api.events)
	return mux
}

type api struct {
	h   History
	log *slog.Logger
}

// UpgradeDetail is the body of GET /api/upgrades/{id}.
type UpgradeDetail struct {
	// Upgrade is the upgrade's summary.
	Upgrade UpgradeSummary `json:"upgrade"`
	// Events are its stored records, oldest first.
	Events []Record `json:"events"`
}

func (a *api) upgrades(w http.ResponseWriter, r *http.Request) {
	list, err := a.h.Upgrades(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if list == nil {
		list = []UpgradeSummary{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *api) upgrade(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sum, recs, ok := a.load(w, r, id)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, UpgradeDetail{Upgrade: sum, Events: recs})
}

func (a *api) events(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	_, recs, ok := a.load(w, r, id)
	if !ok {
		return
	}
	out := make([]json.RawMessage, len(recs))
	for i, rec := range recs {
		out[i] = rec.Event
	}
	writeJSON(w, http.StatusOK, out)
}

// load reads an upgrade's summary and records, answering the error itself
// when it cannot.
func (a *api) load(w http.ResponseWriter, r *http.Request, id string) (UpgradeSummary, []Record, bool) {
	sum, err := a.h.Upgrade(r.Context(), id)
	if errors.Is(err, ErrUpgradeNotFound) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("upgrade %q not found: no stored event carries this upgradeid; GET /api/upgrades lists the known upgrades", id)})
		return UpgradeSummary{}, nil, false
	}
	if err != nil {
		a.fail(w, r, err)
		return UpgradeSummary{}, nil, false
	}
	recs, err := a.h.Events(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return UpgradeSummary{}, nil, false
	}
	if recs == nil {
		recs = []Record{}
	}
	return sum, recs, true
}

type errorBody struct {
	Error string `json:"error"`
}

// fail answers 500 and logs the cause; the client sees a short message only.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("serve request", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: "read history: " + err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
