package nodeupdater

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
)

func TestGateLabelRoundTrip(t *testing.T) {
	target := events.ContainerTarget{Container: "web", MinHealthyMs: 1500, HealthTimeoutMs: 45_000,
		Probe: &events.Probe{Type: events.ProbeExec, Command: []string{"/app", "health"}, TimeoutMs: 3000}}
	got, err := recordedGate(gateLabels(target))
	if err != nil {
		t.Fatal(err)
	}
	want := gateFor(target, true)
	if got.minHealthy != want.minHealthy || got.hold != want.hold || got.timeout != want.timeout || !got.fresh ||
		got.probe == nil || got.probe.Type != events.ProbeExec || strings.Join(got.probe.Command, " ") != "/app health" || got.probe.TimeoutMs != 3000 {
		t.Errorf("recorded gate %+v (probe %+v), want %+v (probe %+v)", got, got.probe, want, want.probe)
	}
}

func TestRecordedGateFallsBackToTheDefault(t *testing.T) {
	def := healthGate{minHealthy: DefaultMinHealthy, timeout: DefaultHealthTimeout, fresh: true}
	tests := []struct {
		name    string
		labels  map[string]string
		wantErr string
	}{
		{name: "no label (an older node-updater made it)", labels: map[string]string{events.LabelNode: "n1"}},
		{name: "not JSON", labels: map[string]string{LabelHealthGate: "fast"}, wantErr: "is not the JSON a node-updater writes"},
		{name: "no timeout", labels: map[string]string{LabelHealthGate: `{"min_healthy_ms":100}`}, wantErr: "timeout_ms must be positive"},
		{name: "negative", labels: map[string]string{LabelHealthGate: `{"min_healthy_ms":-1,"timeout_ms":1000}`}, wantErr: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := recordedGate(tc.labels)
			if got.minHealthy != def.minHealthy || got.timeout != def.timeout || got.probe != nil || !got.fresh {
				t.Errorf("gate %+v, want the default %+v", got, def)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
