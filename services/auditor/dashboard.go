package auditor

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"
)

//go:embed web
var webFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"since": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
}).ParseFS(webFS, "web/*.html"))

// heartbeatEvery keeps idle SSE connections open through proxies that close
// silent ones.
const heartbeatEvery = 15 * time.Second

// NewDashboard returns the auditor's whole HTTP surface: the JSON API of
// NewAPI, plus
//
//	GET /                      the list of upgrades
//	GET /upgrades/{id}         one upgrade, live: waves, nodes and containers
//	                           coloured by state, migrations, health, rollback,
//	                           and its timeline (also for past upgrades)
//	GET /static/...            the page's script and style (embedded)
//	GET /api/stream[?upgrade=] Server-Sent Events: each record as it is stored
//
// hub must be the Hub given to the Auditor (Config.Hub). extra, when set,
// is mounted on the same mux (e.g. "GET /metrics"). A nil logger means
// slog.Default().
func NewDashboard(h History, hub *Hub, logger *slog.Logger, extra map[string]http.Handler) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	d := &dashboard{h: h, hub: hub, log: logger.With("component", "dashboard")}
	mux := http.NewServeMux()
	mux.Handle("/api/", NewAPI(h, logger))
	mux.HandleFunc("GET /api/stream", d.stream)
	static, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", d.list)
	mux.HandleFunc("GET /upgrades/{id}", d.upgrade)
	for pattern, handler := range extra {
		mux.Handle(pattern, handler)
	}
	return mux
}

type dashboard struct {
	h   History
	hub *Hub
	log *slog.Logger
}

func (d *dashboard) list(w http.ResponseWriter, r *http.Request) {
	list, err := d.h.Upgrades(r.Context())
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "list.html", map[string]any{"Upgrades": list})
}

func (d *dashboard) upgrade(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sum, err := d.h.Upgrade(r.Context(), id)
	if errors.Is(err, ErrUpgradeNotFound) {
		// The page still opens: an upgrade just requested may not be stored yet.
		sum = UpgradeSummary{ID: id, State: StateUnknown}
	} else if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, "upgrade.html", map[string]any{"Upgrade": sum})
}

func (d *dashboard) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		d.log.Error("render page", "page", name, "path", r.URL.Path, "err", err)
	}
}

func (d *dashboard) fail(w http.ResponseWriter, r *http.Request, err error) {
	d.log.Error("serve page", "path", r.URL.Path, "err", err)
	http.Error(w, "read history: "+err.Error(), http.StatusInternalServerError)
}

// stream sends each stored record as an SSE "record" event. A client that
// falls behind is dropped with a "dropped" event; EventSource reconnects
// and the page reloads the history, so nothing is missed on screen.
func (d *dashboard) stream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok || d.hub == nil {
		http.Error(w, "live stream unavailable: the dashboard has no hub; pass the auditor's Hub to NewDashboard", http.StatusNotImplemented)
		return
	}
	sub := d.hub.Subscribe(r.URL.Query().Get("upgrade"))
	if sub == nil {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many live clients; retry later", http.StatusServiceUnavailable)
		return
	}
	defer sub.Cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 1000\n: connected\n\n")
	flusher.Flush()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
			fmt.Fprint(w, ": ping\n\n")
		case rec, ok := <-sub.C:
			if !ok {
				fmt.Fprint(w, "event: dropped\ndata: {}\n\n")
				flusher.Flush()
				return
			}
			raw, err := json.Marshal(rec)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "id: %s\nevent: record\ndata: %s\n\n", rec.ID, raw)
		}
		flusher.Flush()
	}
}
