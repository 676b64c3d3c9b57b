package render

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
)

// fill sets every string field of a data struct to "x", every integer to 1
// and every list to one such element, so a detail that prints fields is
// never empty.
func fill(v reflect.Value) {
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue // e.g. inside a time.Time
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Int, reflect.Int64:
			f.SetInt(1)
		case reflect.Uint, reflect.Uint64:
			f.SetUint(1)
		case reflect.Struct:
			fill(f)
		case reflect.Slice:
			elem := reflect.New(f.Type().Elem()).Elem()
			switch elem.Kind() {
			case reflect.String:
				elem.SetString("x")
			case reflect.Struct:
				fill(elem)
			}
			f.Set(reflect.Append(f, elem))
		}
	}
}

// TestEveryTypeHasADetail keeps watch output useful when types are added.
func TestEveryTypeHasADetail(t *testing.T) {
	for _, s := range events.Catalog {
		d := s.New()
		fill(reflect.ValueOf(d).Elem())
		e, err := events.New(events.Source("test", ""), d, events.WithNode("n1"), events.WithUpgrade("u1"), events.WithSubject("web"))
		if err != nil {
			t.Fatal(err)
		}
		if detail(e) == "" && !strings.HasSuffix(s.Type, ".heartbeat") {
			t.Errorf("%s: watch prints no detail; add a case to render.detail", s.Type)
		}
	}
}

// A command migration (db-sync) is shown by its command, schema versions
// and last output, not by the file versions it does not have.
func TestCommandMigrationDetails(t *testing.T) {
	cmd := &events.MigrationCommand{Image: "keystone:v2", Command: []string{"online-data-migrations"}, Repeat: true}
	res := &events.CommandResult{Runs: 3, FromSchema: "3", ToSchema: "3", LogTail: []string{"connecting", "Duplicate entry 'v2'"}, ExitCode: 1}
	for _, tt := range []struct {
		data events.Data
		want string
	}{
		{events.MigrationRequested{Service: "keystone", Phase: "migrate", Command: cmd}, "keystone: migrate: online-data-migrations in keystone:v2, run until it exits 0"},
		{events.MigrationCompleted{Database: "db", SnapshotID: "s1", Command: &events.CommandResult{Runs: 3, FromSchema: "3", ToSchema: "4"}}, "db: schema 3 -> 4, exit 0 after 3 runs (snapshot s1)"},
		{events.MigrationFailed{Database: "db", Error: "the command exited with 1", State: "restored", Command: res}, "db: the command exited with 1 (last output: Duplicate entry 'v2'); restored"},
	} {
		e, err := events.New(events.Source("test", ""), tt.data)
		if err != nil {
			t.Fatal(err)
		}
		if got := detail(e); got != tt.want {
			t.Errorf("detail = %q, want %q", got, tt.want)
		}
	}
}

// TestLinesAlignLongNodeNames: the where column fits the longest node name
// known, from the names given up front or from the plan, and never cuts one.
func TestLinesAlignLongNodeNames(t *testing.T) {
	const long = "compute-eu-west-1-rack12-node031"
	node := func(d events.Data) events.Event {
		return events.MustNew(events.Source("node-updater", long), d, events.WithNode(long), events.WithUpgrade("u1"))
	}
	planner := func(d events.Data) events.Event {
		return events.MustNew(events.Source("planner", ""), d, events.WithUpgrade("u1"))
	}
	timeline := []events.Event{
		planner(events.UpgradeStarted{Waves: 1}),
		node(events.ContainerPulled{Container: "nova_compute", Image: "nova-compute:v2"}),
		node(events.ContainerPullRetrying{Container: "nova_compute", Image: "nova-compute:v2", Attempt: 1, Attempts: 5, Error: "connection refused", RetryInMs: 1000}),
		planner(events.UpgradeCompleted{Release: "v2"}),
	}
	planned := planner(events.UpgradePlanned{Release: "v2", Waves: []events.PlannedWave{{Nodes: []string{"c1", long}}}})
	for _, tt := range []struct {
		name  string
		lines *Lines
		evs   []events.Event
	}{
		{"nodes known up front", NewLines("c1", long), timeline},
		{"nodes from the plan", NewLines(), append([]events.Event{planned}, timeline...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			col := -1
			for _, e := range tt.evs {
				l := tt.lines.Line(e)
				// time (12), 2 spaces, type (26), a space, then where.
				rest := l[41:]
				w := strings.Fields(rest)[0]
				if w != long && w != "planner" {
					t.Fatalf("where %q in %q: a name was cut", w, l)
				}
				at := 41 + len(w) + len(rest[len(w):]) - len(strings.TrimLeft(rest[len(w):], " "))
				if col == -1 {
					col = at
				}
				if at != col || at != 41+len(long)+1 {
					t.Errorf("detail of %q starts at column %d, want %d:\n%s", e.Type(), at, 41+len(long)+1, l)
				}
			}
		})
	}
	if got := detail(timeline[2]); got != "nova_compute: pulling nova-compute:v2 failed (attempt 1 of 5): connection refused; trying again in 1.0s" {
		t.Errorf("pull retry detail = %q", got)
	}
}

// Recovery after a node-updater crash says what it did and never shows an
// interruption it could not measure as a plain figure.
func TestRecoveryDetails(t *testing.T) {
	tests := []struct {
		name string
		data events.Data
		want string
	}{
		{"reverted by recovery", &events.ContainerReverted{Container: "web", Step: "recovery", Reason: "the node-updater stopped", InterruptionMs: 34000},
			"web: the node-updater stopped; old container serves again, interruption 34s"},
		{"finished by recovery, unknown", &events.ContainerReplaced{Container: "web", Result: events.ResultReplaced, FromImage: "a", ToImage: "b", InterruptionMs: 2800, InterruptionUnknown: true, Recovered: true},
			"web: a -> b, interruption unknown (more than 2.8s) (finished by recovery after a node-updater restart)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := events.New(events.Source("test", ""), tc.data, events.WithNode("n1"))
			if err != nil {
				t.Fatal(err)
			}
			if got := detail(e); got != tc.want {
				t.Errorf("detail = %q, want %q", got, tc.want)
			}
		})
	}
}
