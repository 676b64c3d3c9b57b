package manifest_test

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/planner/manifest"
)

func TestParseValid(t *testing.T) {
	req, err := manifest.Parse("r.yaml", []byte("release: v2\nservices:\n  web:\n    image: reg/web:2\n    min_healthy: 1500ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if req.Release.Name != "v2" || req.Release.Services["web"].Image != "reg/web:2" || req.Release.Services["web"].MinHealthyMs != 1500 {
		t.Errorf("req = %+v", req)
	}
}

func TestParseNamesFileLineAndField(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"not yaml", "release: [", []string{"r.yaml", "not valid YAML"}},
		{"unknown field", "release: v2\nservices:\n  web:\n    imgae: x\n", []string{"r.yaml:4: field imgae is not known here", "known fields: release"}},
		{"missing image", "release: v2\nservices:\n  web:\n    strategy: stop-first\n", []string{"r.yaml:3: services.web.image: is missing"}},
		{"everything wrong at once", "failure_action: explode\nservices:\n  web:\n    image: x\n    strategy: sideways\n    min_healthy: soon\n",
			[]string{"r.yaml:1: release: is missing", "r.yaml:1: failure_action: \"explode\"", "r.yaml:5: services.web.strategy", "r.yaml:6: services.web.min_healthy: \"soon\""}},
		{"no services", "release: v2\n", []string{"r.yaml:1: services: is empty"}},
		{"an image with a space", "release: v2\nservices:\n  web:\n    image: \"reg/web:2.0 ubuntu\"\n",
			[]string{`r.yaml:4: services.web.image: "reg/web:2.0 ubuntu" is not an image reference`, "contains a space"}},
		{"an image with capitals", "release: v2\nservices:\n  web:\n    image: reg:5000/Kolla/web:2\n",
			[]string{"r.yaml:4: services.web.image:", "lower case"}},
		{"a per-container image", "release: v2\nservices:\n  keystone:\n    image: reg/keystone:2\n    images:\n      keystone_ssh: reg/keystone-ssh:2\n      keystone_fernet: \"reg/keystone-fernet::2\"\n",
			[]string{`r.yaml:7: services.keystone.images.keystone_fernet: "reg/keystone-fernet::2" is not an image reference`}},
		{"verdict timeout not a duration", "release: v2\nwait_for_verdicts: true\nverdict_timeout: later\nservices:\n  web:\n    image: x\n",
			[]string{"r.yaml:3: verdict_timeout: \"later\" is not a duration"}},
		{"verdict timeout without the wait", "release: v2\nverdict_timeout: 5m\nservices:\n  web:\n    image: x\n",
			[]string{"r.yaml:2: verdict_timeout: is set but wait_for_verdicts is not"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.Parse("r.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestParseAcceptsImageReferences: what registries serve passes the check.
func TestParseAcceptsImageReferences(t *testing.T) {
	for _, img := range []string{
		"x", "web:v2", "registry.example/web:2.0.1", "127.0.0.1:45101/kolla/keystone-ssh:2025.1-ubuntu-noble",
		"quay.io/openstack.kolla/nova_api:2025.1", "Registry.Example:5000/a/b__c/d-e:Tag_1.0",
		"reg/web@sha256:" + strings.Repeat("ab", 32), "reg/web:2@sha256:" + strings.Repeat("0", 64), "[::1]:5000/web:v1",
	} {
		if _, err := manifest.Parse("r.yaml", []byte("release: v2\nservices:\n  web:\n    image: \""+img+"\"\n")); err != nil {
			t.Errorf("%s: %v", img, err)
		}
	}
}

func TestDrainAckAndProbeReachTheRequest(t *testing.T) {
	req, err := manifest.Parse("r.yaml", []byte(`release: v2
services:
  web:
    image: reg/web:2
    drain_ack_timeout: 15s
    drain_ack_required: true
    probe: {type: http, port: 8080, path: /healthz, timeout: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	web := req.Release.Services["web"]
	if web.DrainAckTimeoutMs != 15000 || !web.DrainAckRequired || web.Probe == nil || web.Probe.Port != 8080 || web.Probe.Path != "/healthz" || web.Probe.TimeoutMs != 1000 {
		t.Errorf("service = %+v, probe %+v", web, web.Probe)
	}
	_, err = manifest.Parse("r.yaml", []byte("release: v2\nservices:\n  web:\n    image: x\n    probe: {type: http}\n"))
	if err == nil || !strings.Contains(err.Error(), "r.yaml:5: services.web.probe: an http probe needs the container port") {
		t.Errorf("err = %v", err)
	}
}

func TestWaitForVerdictsReachesTheRequest(t *testing.T) {
	req, err := manifest.Parse("r.yaml", []byte("release: v2\nwait_for_verdicts: true\nverdict_timeout: 2m\nservices:\n  web:\n    image: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !req.WaitForVerdicts || req.VerdictTimeoutMs != 120_000 {
		t.Errorf("wait_for_verdicts %v, verdict timeout %d ms; want true, 120000", req.WaitForVerdicts, req.VerdictTimeoutMs)
	}
}
