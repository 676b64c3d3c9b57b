package auditor_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/auditor"
)

type countObserver struct{ n int }

func (c *countObserver) Observe(auditor.Record) { c.n++ }

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  auditor.Config
		want []string
	}{
		{name: "zero", cfg: auditor.Config{}},
		{name: "observers", cfg: auditor.Config{Observers: []auditor.Observer{&countObserver{}}}},
		{name: "nil observers", cfg: auditor.Config{Observers: []auditor.Observer{&countObserver{}, nil, nil}}, want: []string{"observer 1 is nil", "observer 2 is nil"}},
	} {
		var got []string // one problem a line
		if err := tc.cfg.Validate(); err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if !slices.EqualFunc(got, tc.want, strings.Contains) {
			t.Errorf("%s: Validate reports %q, want one problem saying each of %q", tc.name, got, tc.want)
		}
	}
	// New reports the config's problems with its own.
	if _, err := auditor.New(auditor.Config{Observers: []auditor.Observer{nil}}, nil, nil); err == nil || !strings.Contains(err.Error(), "observer 0 is nil") || !strings.Contains(err.Error(), "JetStream is nil") {
		t.Errorf("New: %v", err)
	}
}
