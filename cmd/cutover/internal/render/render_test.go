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
