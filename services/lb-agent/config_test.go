package lbagent_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	lbagent "github.com/cutover-dev/cutover/services/lb-agent"
)

func TestConfigValidate(t *testing.T) {
	web := map[string]lbagent.Server{"web-1": {Backend: "web", Server: "s1"}}
	for _, tc := range []struct {
		name string
		cfg  lbagent.Config
		want []string // one substring per problem; none: valid
	}{
		{name: "servers and defaults", cfg: lbagent.Config{Servers: web}},
		{name: "backends, name and timeout", cfg: lbagent.Config{Name: "lb-east_1", Backends: map[string]string{"nova_api": "nova_api_back"}, DrainTimeout: time.Minute}},
		{name: "name with a dot", cfg: lbagent.Config{Name: "lb.east", Servers: web}, want: []string{`name "lb.east"`}},
		{name: "negative drain timeout", cfg: lbagent.Config{Servers: web, DrainTimeout: -time.Second}, want: []string{"drain timeout -1s is negative"}},
		{name: "every problem at once", cfg: lbagent.Config{Name: "a b", DrainTimeout: -1,
			Servers: map[string]lbagent.Server{"/x": {"b", "s"}, "y": {Backend: "b"}}, Backends: map[string]string{"z": ""}},
			want: []string{"name", "drain timeout", `server "/x"`, `server "y"`, `backend "z"`}},
	} {
		var got []string // one problem a line
		if err := tc.cfg.Validate(); err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if !slices.EqualFunc(got, tc.want, strings.Contains) {
			t.Errorf("%s: Validate reports %q, want one problem saying each of %q", tc.name, got, tc.want)
		}
	}
}
