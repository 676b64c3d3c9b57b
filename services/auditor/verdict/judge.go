package verdict

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cutover-dev/cutover/events"
)

// PostUpgradeWave is the Wave of a verdict on the post-upgrade window, which
// follows upgrade.completed rather than one wave.
const PostUpgradeWave = -1

// Config configures a Judge. Zero fields take the defaults noted.
type Config struct {
	// Policies maps a service to how it is judged. A service an upgrade
	// changes without a policy here is judged by Default.
	Policies map[string]Policy
	// Default judges the services without a policy of their own.
	Default Policy
	// Watch is the watch window after each wave.completed (default 10s).
	Watch time.Duration
	// PostWatch is the window after upgrade.completed (default 30s).
	PostWatch time.Duration
	// Lateness is how long after a window's end its verdict waits for
	// signals still in flight (default 500ms).
	Lateness time.Duration
	// MaxUpgrades bounds the upgrades followed at once (default 64).
	MaxUpgrades int
	// MaxWindows bounds the windows open at once (default 1024).
	MaxWindows int
	// MaxSources bounds the sources (node/container) a window tracks
	// consecutive failures for; more share one counter (default 64).
	MaxSources int
	// Evidence is how many recent signals a verdict quotes (default 5).
	Evidence int
}

func (c *Config) setDefaults() {
	c.Watch = cmp.Or(c.Watch, 10*time.Second)
	c.PostWatch = cmp.Or(c.PostWatch, 30*time.Second)
	c.Lateness = cmp.Or(c.Lateness, 500*time.Millisecond)
	c.MaxUpgrades = cmp.Or(c.MaxUpgrades, 64)
	c.MaxWindows = cmp.Or(c.MaxWindows, 1024)
	c.MaxSources = cmp.Or(c.MaxSources, 64)
	c.Evidence = cmp.Or(c.Evidence, 5)
}

// Validate returns every problem with the config at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Watch < 0 || c.PostWatch < 0 || c.Lateness < 0 {
		errs = append(errs, errors.New("judge windows: watch, post-watch and lateness must not be negative"))
	}
	if c.MaxUpgrades < 0 || c.MaxWindows < 0 || c.MaxSources < 0 || c.Evidence < 0 {
		errs = append(errs, errors.New("judge caps: must not be negative"))
	}
	if err := c.Default.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("default policy: %w", err))
	}
	for _, s := range slices.Sorted(maps.Keys(c.Policies)) {
		p := c.Policies[s]
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("policy of service %q: %w", s, err))
		}
		if w := max(c.Watch, c.PostWatch); w > 0 && p.MinHealthy > w {
			errs = append(errs, fmt.Errorf("policy of service %q: min healthy %v is longer than the watch windows (%v); lower it or widen the windows", s, p.MinHealthy, w))
		}
	}
	return errors.Join(errs...)
}

// Stats counts what a Judge did with its input.
type Stats struct {
	// Signals counts health signals counted in at least one window.
	Signals uint64 `json:"signals"`
	// Unknown counts signals for a service no policy or followed upgrade knows.
	Unknown uint64 `json:"unknown"`
	// Idle counts signals for a known service with no window open.
	Idle uint64 `json:"idle"`
	// Garbage counts messages that did not decode as events.
	Garbage uint64 `json:"garbage"`
	// Shed counts windows or upgrades not followed because a cap was reached.
	Shed uint64 `json:"shed"`
	// Verdicts counts published verdicts by verdict.
	Verdicts map[string]uint64 `json:"verdicts"`
	// Rollbacks counts rollback requests.
	Rollbacks uint64 `json:"rollbacks"`
	// Windows is the number of windows open or waiting to open now.
	Windows int `json:"windows"`
	// Upgrades is the number of upgrades followed now.
	Upgrades int `json:"upgrades"`
	// Buffered is the number of signals held as evidence now, all windows together.
	Buffered int `json:"buffered"`
}

// Judge turns an upgrade's events and health signals into verdicts. It is
// not safe for concurrent use: one goroutine owns it (see Watcher).
type Judge struct {
	cfg      Config
	upgrades map[string]*upgrade
	windows  map[windowKey]*window
	bySvc    map[string]map[windowKey]*window // open or pending windows per service
	stats    Stats
}

type windowKey struct {
	upgrade string
	wave    int
	service string
}

type upgrade struct {
	id        string
	wave      int
	services  map[string][]string // node -> services the plan changes there
	container map[string]string   // node + "/" + container -> service
	done      bool                // completed, failed, aborted or rolling back
	halted    bool                // failed, aborted or rolling back: no more windows
	seen      time.Time
}

type signal struct {
	at      time.Time
	source  string
	check   string
	status  string
	message string
}

type window struct {
	key    windowKey
	policy Policy
	nodes  []string // the wave's nodes; nil for every node
	open   bool     // the window's start is known (wave or upgrade completed)
	tally  Tally
	runs   map[string]int // consecutive failures per source
	recent []signal       // ring of the newest signals, for evidence
	next   int
}

// NewJudge returns a Judge, or every problem with cfg.
func NewJudge(cfg Config) (*Judge, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configure health judge: %w", err)
	}
	return &Judge{
		cfg:      cfg,
		upgrades: map[string]*upgrade{},
		windows:  map[windowKey]*window{},
		bySvc:    map[string]map[windowKey]*window{},
		stats:    Stats{Verdicts: map[string]uint64{}},
	}, nil
}

// Stats returns a copy of the counters.
func (j *Judge) Stats() Stats {
	s := j.stats
	s.Verdicts = maps.Clone(j.stats.Verdicts)
	s.Windows, s.Upgrades = len(j.windows), len(j.upgrades)
	for _, w := range j.windows {
		s.Buffered += len(w.recent)
	}
	return s
}

// Garbage counts a message that did not decode; it is dropped.
func (j *Judge) Garbage() { j.stats.Garbage++ }

// policy returns the effective policy of a service.
func (j *Judge) policy(service string) Policy {
	if p, ok := j.cfg.Policies[service]; ok {
		return p.withDefaults()
	}
	return j.cfg.Default.withDefaults()
}

// Observe feeds one event, stored by the stream at time at, and returns the
// events to publish in order.
func (j *Judge) Observe(at time.Time, e events.Event) []events.Event {
	switch e.Type() {
	case events.TypeHealthSignal:
		d, err := events.DataAs[events.HealthSignal](e)
		if err != nil {
			j.stats.Garbage++
			return nil
		}
		return j.onSignal(at, d)
	case events.TypeUpgradePlanned:
		if d, err := events.DataAs[events.UpgradePlanned](e); err == nil {
			j.onPlanned(at, events.UpgradeID(e), d)
		}
	case events.TypeWaveStarted:
		if d, err := events.DataAs[events.WaveStarted](e); err == nil {
			if u := j.upgrade(at, events.UpgradeID(e)); u != nil && !u.halted {
				u.wave = d.Wave
			}
		}
	case events.TypeWaveCompleted:
		if d, err := events.DataAs[events.WaveCompleted](e); err == nil {
			return j.onWaveCompleted(at, events.UpgradeID(e), d)
		}
	case events.TypeUpgradeCompleted:
		return j.onUpgradeCompleted(at, events.UpgradeID(e))
	case events.TypeContainerReplaced:
		if d, err := events.DataAs[events.ContainerReplaced](e); err == nil {
			return j.onReplaced(at, events.UpgradeID(e), events.NodeID(e), d)
		}
	case events.TypeNodeUpdateRequested:
		// A rollback command means the planner is rolling back already
		// (a failed wave): the windows of the upgrade no longer judge it.
		if d, err := events.DataAs[events.NodeUpdateRequested](e); err == nil && d.Rollback {
			j.halt(events.UpgradeID(e))
		}
	case events.TypeRollbackRequested, events.TypeUpgradeFailed, events.TypeUpgradeAborted, events.TypeRollbackCompleted:
		id := events.UpgradeID(e)
		if id == "" {
			id = e.Subject()
		}
		j.halt(id)
	}
	return nil
}

// upgrade returns the followed upgrade id, starting to follow it when new;
// nil when id is empty or the cap is reached.
func (j *Judge) upgrade(at time.Time, id string) *upgrade {
	if id == "" {
		return nil
	}
	if u, ok := j.upgrades[id]; ok {
		u.seen = at
		return u
	}
	if len(j.upgrades) >= j.cfg.MaxUpgrades && !j.evictUpgrade() {
		j.stats.Shed++
		return nil
	}
	u := &upgrade{id: id, services: map[string][]string{}, container: map[string]string{}, seen: at}
	j.upgrades[id] = u
	return u
}

// evictUpgrade forgets the least recently seen upgrade without windows.
func (j *Judge) evictUpgrade() bool {
	busy := map[string]bool{}
	for k := range j.windows {
		busy[k.upgrade] = true
	}
	var oldest *upgrade
	for _, u := range j.upgrades {
		if !busy[u.id] && (oldest == nil || u.seen.Before(oldest.seen)) {
			oldest = u
		}
	}
	if oldest == nil {
		return false
	}
	delete(j.upgrades, oldest.id)
	return true
}

func (j *Judge) onPlanned(at time.Time, id string, d events.UpgradePlanned) {
	u := j.upgrade(at, id)
	if u == nil {
		return
	}
	for _, c := range d.Changes {
		if !slices.Contains(u.services[c.Node], c.Service) {
			u.services[c.Node] = append(u.services[c.Node], c.Service)
		}
		u.container[c.Node+"/"+c.Container] = c.Service
	}
}

// servicesOn returns the services an upgrade changes on nodes (every node
// when nodes is nil). Without a plan (the auditor started after it) the
// services with a policy stand in.
func (j *Judge) servicesOn(u *upgrade, nodes []string) []string {
	set := map[string]bool{}
	if len(u.services) == 0 {
		for s := range j.cfg.Policies {
			set[s] = true
		}
	}
	for n, ss := range u.services {
		if nodes == nil || slices.Contains(nodes, n) {
			for _, s := range ss {
				set[s] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func (j *Judge) onWaveCompleted(at time.Time, id string, d events.WaveCompleted) []events.Event {
	u := j.upgrade(at, id)
	if u == nil || u.halted {
		return nil
	}
	var out []events.Event
	for _, s := range j.servicesOn(u, d.Nodes) {
		out = append(out, j.openWindow(u, d.Wave, s, d.Nodes, at, j.cfg.Watch)...)
	}
	return out
}

func (j *Judge) onUpgradeCompleted(at time.Time, id string) []events.Event {
	u := j.upgrade(at, id)
	if u == nil || u.halted {
		return nil
	}
	u.done = true
	var out []events.Event
	for _, s := range j.servicesOn(u, nil) {
		out = append(out, j.openWindow(u, PostUpgradeWave, s, nil, at, j.cfg.PostWatch)...)
	}
	return out
}

// window returns the window of key, creating it (not yet open) when new;
// nil when the cap is reached.
func (j *Judge) window(key windowKey) *window {
	if w, ok := j.windows[key]; ok {
		return w
	}
	if len(j.windows) >= j.cfg.MaxWindows {
		j.stats.Shed++
		return nil
	}
	w := &window{key: key, policy: j.policy(key.service), runs: map[string]int{}}
	j.windows[key] = w
	if j.bySvc[key.service] == nil {
		j.bySvc[key.service] = map[windowKey]*window{}
	}
	j.bySvc[key.service][key] = w
	return w
}

func (j *Judge) dropWindow(w *window) {
	delete(j.windows, w.key)
	if m := j.bySvc[w.key.service]; m != nil {
		delete(m, w.key)
		if len(m) == 0 {
			delete(j.bySvc, w.key.service)
		}
	}
}

func (j *Judge) openWindow(u *upgrade, wave int, service string, nodes []string, at time.Time, length time.Duration) []events.Event {
	w := j.window(windowKey{u.id, wave, service})
	if w == nil || w.open {
		return nil
	}
	w.open, w.nodes = true, slices.Clone(nodes)
	w.tally.Start, w.tally.End = at, at.Add(length)
	// An interruption measured during the wave may have decided it already.
	return j.judge(w, false)
}

func (j *Judge) onReplaced(at time.Time, id, node string, d events.ContainerReplaced) []events.Event {
	u := j.upgrade(at, id)
	if u == nil || u.halted || d.Result != events.ResultReplaced {
		return nil
	}
	service := d.Service
	if service == "" {
		service = u.container[node+"/"+d.Container]
	}
	if service == "" {
		return nil
	}
	w := j.window(windowKey{u.id, u.wave, service})
	if w == nil {
		return nil
	}
	if took := time.Duration(d.InterruptionMs) * time.Millisecond; took > w.tally.Interruption {
		w.tally.Interruption = took
		w.tally.Interrupted = d.Container
		if node != "" {
			w.tally.Interrupted += " on " + node
		}
	}
	return j.judge(w, false)
}

func (j *Judge) known(service string) bool {
	if _, ok := j.cfg.Policies[service]; ok {
		return true
	}
	for _, u := range j.upgrades {
		for _, ss := range u.services {
			if slices.Contains(ss, service) {
				return true
			}
		}
	}
	return false
}

func (j *Judge) onSignal(at time.Time, d events.HealthSignal) []events.Event {
	counted := false
	var out []events.Event
	// In window order, so that with several windows open the earliest wave
	// decides first and the post-upgrade window last.
	for _, k := range slices.SortedFunc(maps.Keys(j.bySvc[d.Service]), compareKeys) {
		w := j.windows[k]
		if w == nil || !w.open || at.Before(w.tally.Start) || at.After(w.tally.End) {
			continue
		}
		// A signal from a node counts for the wave that changed that node.
		if d.Node != "" && w.nodes != nil && !slices.Contains(w.nodes, d.Node) {
			continue
		}
		counted = true
		j.count(w, at, d)
		out = append(out, j.judge(w, false)...)
	}
	switch {
	case counted:
		j.stats.Signals++
	case j.known(d.Service):
		j.stats.Idle++
	default:
		j.stats.Unknown++
	}
	return out
}

// count adds one signal to a window's tally and evidence ring.
func (j *Judge) count(w *window, at time.Time, d events.HealthSignal) {
	src := d.Node
	if d.Container != "" {
		src = strings.TrimPrefix(src+"/"+d.Container, "/")
	}
	if src == "" {
		src = "the service"
	}
	if _, ok := w.runs[src]; !ok && len(w.runs) >= j.cfg.MaxSources {
		src = "other sources"
	}
	t := &w.tally
	t.Signals++
	if d.Status == "fail" {
		t.Failures++
		t.LastFailure = at
		t.HealthySince = time.Time{}
		w.runs[src]++
		if w.runs[src] > t.WorstRun {
			t.WorstRun, t.WorstRunSource = w.runs[src], src
		}
	} else {
		w.runs[src] = 0
		t.LastPass = at
		if t.HealthySince.IsZero() {
			t.HealthySince = at
		}
	}
	msg := d.Message
	if len(msg) > 120 {
		msg = msg[:120] + "..."
	}
	s := signal{at: at, source: src, check: d.Check, status: d.Status, message: msg}
	if len(w.recent) < j.cfg.Evidence {
		w.recent = append(w.recent, s)
	} else if j.cfg.Evidence > 0 {
		w.recent[w.next] = s
		w.next = (w.next + 1) % j.cfg.Evidence
	}
}

// Tick closes the windows whose end (plus Lateness) is before now and
// returns their verdicts. Only call it once the stream is read up to now:
// a window closed early would miss signals stored before its end.
func (j *Judge) Tick(now time.Time) []events.Event {
	var out []events.Event
	for _, k := range slices.SortedFunc(maps.Keys(j.windows), compareKeys) {
		w := j.windows[k]
		if w != nil && w.open && now.Sub(w.tally.End) >= j.cfg.Lateness {
			out = append(out, j.judge(w, true)...)
		}
	}
	for id, u := range j.upgrades {
		if u.done && !j.hasWindows(id) {
			delete(j.upgrades, id)
		}
	}
	return out
}

// compareKeys orders windows by upgrade, then wave with the post-upgrade
// window last, then service.
func compareKeys(a, b windowKey) int {
	if c := strings.Compare(a.upgrade, b.upgrade); c != 0 {
		return c
	}
	wa, wb := a.wave, b.wave
	if wa == PostUpgradeWave {
		wa = math.MaxInt
	}
	if wb == PostUpgradeWave {
		wb = math.MaxInt
	}
	if c := cmp.Compare(wa, wb); c != 0 {
		return c
	}
	return strings.Compare(a.service, b.service)
}

func (j *Judge) hasWindows(id string) bool {
	for k := range j.windows {
		if k.upgrade == id {
			return true
		}
	}
	return false
}

// halt stops judging an upgrade: it ended or is rolling back, and what its
// services do now says nothing about the release.
func (j *Judge) halt(id string) {
	u, ok := j.upgrades[id]
	if !ok {
		return
	}
	u.halted, u.done = true, true
	for k, w := range j.windows {
		if k.upgrade == id {
			j.dropWindow(w)
		}
	}
}

// judge evaluates a window and, once decided, returns its verdict (and a
// rollback request when it fails under a rollback policy) and forgets it.
func (j *Judge) judge(w *window, closed bool) []events.Event {
	verdict, evidence, decided := Evaluate(w.policy, w.tally, closed)
	if !decided {
		return nil
	}
	j.dropWindow(w)
	evidence = append(evidence, w.evidence()...)
	k := w.key
	v, err := events.New(events.Source("auditor", ""), events.HealthVerdict{Service: k.service, Wave: k.wave, Verdict: verdict, Evidence: evidence},
		events.WithUpgrade(k.upgrade), events.WithID(deriveID("verdict", k.upgrade, fmt.Sprint(k.wave), k.service)))
	if err != nil { // cannot happen: the data is well formed
		return nil
	}
	j.stats.Verdicts[verdict]++
	out := []events.Event{v}
	if verdict != Failing || w.policy.Action != ActionRollback {
		return out
	}
	if u := j.upgrades[k.upgrade]; u == nil || u.halted {
		return out
	}
	where := fmt.Sprintf("the watch window of wave %d", k.wave)
	if k.wave == PostUpgradeWave {
		where = "the post-upgrade window"
	}
	rb, err := events.New(events.Source("auditor", ""), events.RollbackRequested{
		Reason:      fmt.Sprintf("service %s failed its health policy in %s: %s", k.service, where, evidence[0]),
		RequestedBy: "auditor",
	}, events.CausedBy(v), events.WithID(deriveID("rollback", k.upgrade)))
	if err != nil {
		return out
	}
	j.stats.Rollbacks++
	j.halt(k.upgrade)
	return append(out, rb)
}

// evidence quotes the window's newest signals, oldest first.
func (w *window) evidence() []string {
	out := make([]string, 0, len(w.recent))
	for i := range w.recent {
		s := w.recent[(w.next+i)%len(w.recent)]
		line := fmt.Sprintf("signal %s from %s at %s", s.status, s.source, s.at.UTC().Format(time.RFC3339Nano))
		if s.check != "" {
			line += " (" + s.check + ")"
		}
		if s.message != "" {
			line += ": " + s.message
		}
		out = append(out, line)
	}
	return out
}

var idNamespace = uuid.MustParse("0b7e4c36-3f0f-4a51-9d0e-6175646974f2")

// deriveID returns the same event id each time the same decision is made,
// so a restarted auditor's repeated decision is deduplicated by JetStream.
func deriveID(parts ...string) string {
	return uuid.NewSHA1(idNamespace, []byte(strings.Join(parts, "\x00"))).String()
}
