package nodeupdater

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/events"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr []string
	}{
		{name: "ok", cfg: Config{Node: "node-a"}},
		{name: "empty node", cfg: Config{}, wantErr: []string{"node name is empty"}},
		{name: "dot", cfg: Config{Node: "node.a"}, wantErr: []string{`"node.a"`}},
		{name: "space", cfg: Config{Node: "node a"}, wantErr: []string{"subject token"}},
		{name: "wildcards", cfg: Config{Node: "*"}, wantErr: []string{"subject token"}},
		{name: "gt", cfg: Config{Node: "a>"}, wantErr: []string{"subject token"}},
		{name: "every problem at once", cfg: Config{Node: "a.b", InventoryEvery: -time.Second}, wantErr: []string{"subject token", "negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.setDefaults()
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	if c.InventoryEvery != DefaultInventoryEvery || c.HeartbeatEvery != DefaultHeartbeatEvery || c.Logger == nil || c.AgentVersion == "" {
		t.Errorf("defaults: %+v", c)
	}
	off := Config{HeartbeatEvery: -1}
	off.setDefaults()
	if off.HeartbeatEvery > 0 {
		t.Errorf("negative heartbeat period turned on: %s", off.HeartbeatEvery)
	}
}

func TestGateFor(t *testing.T) {
	g := gateFor(events.ContainerTarget{}, true)
	if g.minHealthy != DefaultMinHealthy || g.timeout != DefaultHealthTimeout || g.hold != 0 || !g.fresh {
		t.Errorf("default gate %+v", g)
	}
	g = gateFor(events.ContainerTarget{MinHealthyMs: 2500, HealthTimeoutMs: 9000}, false)
	if g.minHealthy != 2500*time.Millisecond || g.hold != 2500*time.Millisecond || g.timeout != 9*time.Second {
		t.Errorf("explicit gate %+v", g)
	}
}

func TestHealthJudge(t *testing.T) {
	started := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	running := Container{State: "running", Running: true, StartedAt: started}
	withHC := func(h string) Container {
		c := running
		c.Healthcheck, c.Health = true, h
		return c
	}
	long := time.Now().Add(-time.Hour)
	tests := []struct {
		name       string
		gate       healthGate
		first, now Container
		begin      time.Time
		want       bool
		wantErr    string
	}{
		{name: "no healthcheck, not long enough", gate: healthGate{minHealthy: time.Hour}, first: running, now: running, begin: time.Now()},
		{name: "no healthcheck, ran long enough", gate: healthGate{minHealthy: time.Second}, first: running, now: running, begin: long, want: true},
		{name: "exited", first: running, now: Container{State: "exited", ExitCode: 3, StartedAt: started}, wantErr: "exited with code 3"},
		{name: "restarting", first: running, now: Container{State: "restarting", Running: true, Restarting: true, StartedAt: started}, wantErr: "restarted"},
		{name: "restart count grew", first: running, now: Container{State: "running", Running: true, RestartCount: 1, StartedAt: started}, wantErr: "restarted"},
		{name: "started again", first: running, now: Container{State: "running", Running: true, StartedAt: started.Add(time.Second)}, wantErr: "restarted"},
		{name: "healthcheck starting", first: withHC("starting"), now: withHC("starting"), begin: long},
		{name: "healthcheck healthy", first: withHC("starting"), now: withHC("healthy"), want: true},
		{name: "healthcheck healthy but must hold", gate: healthGate{hold: time.Hour}, first: withHC("starting"), now: withHC("healthy")},
		{name: "healthcheck unhealthy", first: withHC("starting"), now: func() Container { c := withHC("unhealthy"); c.HealthOutput = "503"; return c }(), wantErr: `unhealthy: last check said "503"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var since time.Time
			got, err := tt.gate.judge(tt.first, tt.now, tt.begin, &since)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("judge = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestOldName(t *testing.T) {
	if base, ok := isOldName(oldName("web")); !ok || base != "web" {
		t.Errorf("isOldName(oldName(web)) = %q, %v", base, ok)
	}
	for _, n := range []string{"web", OldSuffix, "web-cutover-older"} {
		if _, ok := isOldName(n); ok {
			t.Errorf("isOldName(%q) = true", n)
		}
	}
}

func TestNewName(t *testing.T) {
	if base, ok := isNewName(newName("web")); !ok || base != "web" {
		t.Errorf("isNewName(newName(web)) = %q, %v", base, ok)
	}
	for _, n := range []string{"web", NewSuffix, oldName("web")} {
		if _, ok := isNewName(n); ok {
			t.Errorf("isNewName(%q) = true", n)
		}
	}
}

func TestGateForProbe(t *testing.T) {
	p := &events.Probe{Type: events.ProbeHTTP, Port: 8080, IntervalMs: 100}
	g := gateFor(events.ContainerTarget{Probe: p}, true)
	if g.probe == nil || g.probe.Type != p.Type || g.probe.Port != p.Port || g.probe == p {
		t.Errorf("gate probe %+v, want a copy of %+v", g.probe, p)
	}
	if got := probeInterval(*g.probe); got != 100*time.Millisecond {
		t.Errorf("probe interval %s", got)
	}
	if got := probeInterval(events.Probe{}); got != DefaultProbeInterval {
		t.Errorf("default probe interval %s", got)
	}
}

func TestRunningSince(t *testing.T) {
	begin := time.Now()
	tests := []struct {
		name    string
		started time.Time
		want    time.Time
	}{
		{name: "unknown start", want: begin},
		{name: "started during the start call", started: begin.Add(-200 * time.Millisecond), want: begin.Add(-200 * time.Millisecond)},
		{name: "started long before the gate", started: begin.Add(-time.Hour), want: begin},
		{name: "engine clock ahead", started: begin.Add(time.Hour), want: begin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runningSince(Container{StartedAt: tt.started}, begin); !got.Equal(tt.want) {
				t.Errorf("runningSince = %s, want %s", got, tt.want)
			}
		})
	}
}
