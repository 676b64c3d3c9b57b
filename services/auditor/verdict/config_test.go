package verdict_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/auditor/verdict"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		spec string
		svc  string
		want verdict.Policy
		errs []string // substrings the error must hold, every problem at once
	}{
		{spec: "web:consecutive=3,ratio=0.5,min_signals=4,max_interruption=5s,action=rollback", svc: "web",
			want: verdict.Policy{ConsecutiveFailures: 3, FailureRatio: 0.5, MinSignals: 4, MaxInterruption: 5 * time.Second, Action: "rollback"}},
		{spec: "db:min_healthy=10s, action=report", svc: "db", want: verdict.Policy{MinHealthy: 10 * time.Second, Action: "report"}},
		{spec: "default:consecutive=2", svc: "default", want: verdict.Policy{ConsecutiveFailures: 2}},
		{spec: "web:", svc: "web"},
		{spec: "consecutive=3", errs: []string{"want SERVICE:KEY=VALUE"}},
		{spec: ":ratio=0.5", errs: []string{"want SERVICE:KEY=VALUE"}},
		{spec: "web:ratio=2,consecutive=0,max_interruption=5,action=explode,colour=red,min_signals=x,junk",
			errs: []string{`policy "web:`, "ratio=2: must be in (0, 1]", "consecutive=0: must be a positive integer",
				"max_interruption=5: want a duration", "action=explode: must be rollback or report",
				`unknown key "colour" (known: consecutive, ratio, min_signals, min_healthy, max_interruption, action)`,
				"min_signals=x: not a number", `"junk": want KEY=VALUE`}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			svc, p, err := verdict.ParsePolicy(tt.spec)
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatalf("ParsePolicy succeeded with %s %+v, want an error", svc, p)
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error %q does not say %q", err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if svc != tt.svc || p != tt.want {
				t.Errorf("ParsePolicy = %s %+v, want %s %+v", svc, p, tt.svc, tt.want)
			}
		})
	}
}

func TestPoliciesFlagAndFile(t *testing.T) {
	file, err := verdict.ParsePoliciesYAML([]byte(`
default:
  consecutive: 5
services:
  web:
    consecutive: 3
    ratio: 0.5
    max_interruption: 5s
  db:
    action: report
`))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var flags verdict.Policies
	fs.Var(&flags, "policy", "")
	if err := fs.Parse([]string{"--policy", "web:consecutive=2", "--policy", "api:action=report"}); err != nil {
		t.Fatal(err)
	}
	file.Merge(flags) // flags after the file override it, per service
	var cfg verdict.Config
	file.Apply(&cfg)
	want := map[string]verdict.Policy{
		"web": {ConsecutiveFailures: 2},
		"db":  {Action: "report"},
		"api": {Action: "report"},
	}
	if cfg.Default != (verdict.Policy{ConsecutiveFailures: 5}) {
		t.Errorf("default = %+v, want consecutive 5", cfg.Default)
	}
	if len(cfg.Policies) != len(want) {
		t.Fatalf("policies = %+v, want %+v", cfg.Policies, want)
	}
	for svc, p := range want {
		if cfg.Policies[svc] != p {
			t.Errorf("policy of %s = %+v, want %+v", svc, cfg.Policies[svc], p)
		}
	}
	if _, err := verdict.NewJudge(cfg); err != nil {
		t.Errorf("a judge refuses the policies: %v", err)
	}
	if err := fs.Parse([]string{"--policy", "web:ratio=7"}); err == nil || !strings.Contains(err.Error(), "ratio=7") {
		t.Errorf("a bad --policy parsed with error %v, want one naming ratio=7", err)
	}
}

func TestParsePoliciesYAMLErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		errs       []string
	}{
		{"unknown top-level key", "policies:\n  web: {}\n", []string{"field policies not found"}},
		{"every bad service at once", "services:\n  web:\n    ratio: 3\n  db:\n    colour: red\n",
			[]string{"policy of service web: ratio=3: must be in (0, 1]", `policy of service db: unknown key "colour"`}},
		{"bad default", "default:\n  min_healthy: soon\n", []string{"policy default: min_healthy=soon: want a duration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verdict.ParsePoliciesYAML([]byte(tt.yaml))
			if err == nil {
				t.Fatal("ParsePoliciesYAML succeeded, want an error")
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q does not say %q", err, e)
				}
			}
		})
	}
}
