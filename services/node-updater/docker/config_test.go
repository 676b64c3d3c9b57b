package docker

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const oldID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// oldImage is the image the old container was created from: its defaults
// show up merged into the container's inspected Config.
func oldImage() *dockerspec.DockerOCIImageConfig {
	return &dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{
			User:         "app",
			ExposedPorts: map[string]struct{}{"8080/tcp": {}},
			Env:          []string{"PATH=/usr/bin:/bin", "DEMO_VERSION=v1"},
			Entrypoint:   []string{"/app"},
			Cmd:          []string{"serve"},
			Volumes:      map[string]struct{}{"/cache": {}},
			WorkingDir:   "/srv",
			Labels:       map[string]string{"org.opencontainers.image.version": "v1", "vendor": "acme"},
			StopSignal:   "SIGQUIT",
		},
		DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{
			Healthcheck: &dockerspec.HealthcheckConfig{Test: []string{"CMD", "/app", "health"}, Interval: time.Second, Retries: 3},
			Shell:       []string{"/bin/sh", "-c"},
		},
	}
}

// inspected is an old container as `docker inspect` shows it: the image's
// defaults merged with what the user set.
func inspected() container.InspectResponse {
	img := oldImage()
	hc := *img.Healthcheck
	return container.InspectResponse{
		ID:    oldID,
		Name:  "/web-cutover-old",
		Image: "sha256:v1",
		Config: &container.Config{
			Hostname:     oldID[:12],
			User:         img.User,
			ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}, network.MustParsePort("9090/tcp"): {}},
			Env:          []string{"PATH=/usr/bin:/bin", "DEMO_VERSION=v1", "LOG_LEVEL=debug"},
			Cmd:          []string{"serve"},
			Healthcheck:  &hc,
			Image:        "reg/web:v1",
			Volumes:      map[string]struct{}{"/cache": {}, "/scratch": {}},
			WorkingDir:   img.WorkingDir,
			Entrypoint:   []string{"/app"},
			Labels: map[string]string{
				"org.opencontainers.image.version": "v1",
				"vendor":                           "acme",
				"dev.cutover.node":                 "node-a",
				"dev.cutover.service":              "web",
			},
			StopSignal: "SIGQUIT",
			Shell:      []string{"/bin/sh", "-c"},
		},
		HostConfig: &container.HostConfig{
			Binds:         []string{"web-data:/data", "/etc/web:/etc/web:ro"},
			NetworkMode:   "shop",
			PortBindings:  network.PortMap{network.MustParsePort("8080/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "18080"}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
			CapAdd:        []string{"CAP_NET_ADMIN"},
			Privileged:    false,
			PidMode:       "host",
			IpcMode:       "shareable",
			CgroupnsMode:  "private",
			LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m"}},
			Links:         []string{"/db:/web-cutover-old/database"},
			Resources:     container.Resources{Memory: 256 << 20, PidsLimit: new(int64(100))},
			Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: "web-logs", Target: "/logs"}},
		},
		Mounts: []container.MountPoint{
			{Type: mount.TypeVolume, Name: "web-data", Destination: "/data", RW: true},
			{Type: mount.TypeBind, Source: "/etc/web", Destination: "/etc/web"},
			{Type: mount.TypeVolume, Name: "web-logs", Destination: "/logs", RW: true},
			{Type: mount.TypeVolume, Name: "3f4e5d", Destination: "/cache", RW: true},
			{Type: mount.TypeVolume, Name: "9a8b7c", Destination: "/scratch", RW: false},
		},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"shop": {
				Aliases:    []string{"web", oldID[:12], "www"},
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.9.0.10")},
				NetworkID:  "n1", EndpointID: "e1",
				IPAddress: netip.MustParseAddr("10.9.0.10"), Gateway: netip.MustParseAddr("10.9.0.1"),
			},
			"backend": {
				Aliases:    []string{oldID[:12], "web-internal"},
				IPAMConfig: &network.EndpointIPAMConfig{},
				NetworkID:  "n2", EndpointID: "e2",
				IPAddress: netip.MustParseAddr("10.8.0.3"),
			},
		}},
	}
}

func TestReplacementConfig(t *testing.T) {
	opts, extra := replacementConfig(inspected(), oldImage(), "web", "reg/web:v2", nil)
	cfg, host := opts.Config, opts.HostConfig

	if opts.Name != "web" || cfg.Image != "reg/web:v2" {
		t.Errorf("name %q image %q", opts.Name, cfg.Image)
	}

	tests := []struct {
		name string
		got  any
		want any
	}{
		// Image defaults are dropped so the new image's apply.
		{"env keeps only user entries", cfg.Env, []string{"LOG_LEVEL=debug"}},
		{"cmd equal to image default dropped", cfg.Cmd, []string(nil)},
		{"entrypoint equal to image default dropped", cfg.Entrypoint, []string(nil)},
		{"workdir dropped", cfg.WorkingDir, ""},
		{"user dropped", cfg.User, ""},
		{"stop signal dropped", cfg.StopSignal, ""},
		{"healthcheck equal to image's dropped", cfg.Healthcheck == nil, true},
		{"shell is build-only", cfg.Shell, []string(nil)},
		{"labels keep user and cutover labels", cfg.Labels, map[string]string{"dev.cutover.node": "node-a", "dev.cutover.service": "web"}},
		{"image port dropped, user port kept", cfg.ExposedPorts, network.PortSet{network.MustParsePort("9090/tcp"): {}}},
		{"image volume dropped, user volume kept", cfg.Volumes, map[string]struct{}{"/scratch": {}}},
		{"default hostname dropped", cfg.Hostname, ""},

		// HostConfig is kept whole.
		{"binds", host.Binds, []string{"web-data:/data", "/etc/web:/etc/web:ro"}},
		{"network mode", host.NetworkMode, container.NetworkMode("shop")},
		{"port bindings", host.PortBindings, inspected().HostConfig.PortBindings},
		{"restart policy", host.RestartPolicy, container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}},
		{"caps", host.CapAdd, []string{"CAP_NET_ADMIN"}},
		{"pid mode", host.PidMode, container.PidMode("host")},
		{"ipc mode", host.IpcMode, container.IpcMode("shareable")},
		{"cgroupns mode", host.CgroupnsMode, container.CgroupnsMode("private")},
		{"log config", host.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m"}}},
		{"resources", host.Memory, int64(256 << 20)},
		{"links rewritten", host.Links, []string{"db:database"}},
		{"mounts keep user mount and add anonymous volumes by name", host.Mounts, []mount.Mount{
			{Type: mount.TypeVolume, Source: "web-logs", Target: "/logs"},
			{Type: mount.TypeVolume, Source: "3f4e5d", Target: "/cache"},
			{Type: mount.TypeVolume, Source: "9a8b7c", Target: "/scratch", ReadOnly: true},
		}},

		// Networks: primary at create, others connected after.
		{"primary endpoint", opts.NetworkingConfig.EndpointsConfig, map[string]*network.EndpointSettings{
			"shop": {Aliases: []string{"web", "www"}, IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.9.0.10")}},
		}},
		{"other networks", extra, []attachment{{network: "backend", endpoint: &network.EndpointSettings{Aliases: []string{"web-internal"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v\nwant %#v", tt.got, tt.want)
			}
		})
	}
}

func TestReplacementConfigUserOverrides(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*container.InspectResponse)
		check  func(t *testing.T, cfg *container.Config)
	}{
		{
			name: "user entrypoint kept with empty cmd",
			mutate: func(c *container.InspectResponse) {
				c.Config.Entrypoint = []string{"/bin/other"}
				c.Config.Cmd = nil
			},
			check: func(t *testing.T, cfg *container.Config) {
				if !slices.Equal(cfg.Entrypoint, []string{"/bin/other"}) || cfg.Cmd != nil {
					t.Errorf("entrypoint %v cmd %v", cfg.Entrypoint, cfg.Cmd)
				}
			},
		},
		{
			name:   "user cmd kept",
			mutate: func(c *container.InspectResponse) { c.Config.Cmd = []string{"migrate", "--dry-run"} },
			check: func(t *testing.T, cfg *container.Config) {
				if !slices.Equal(cfg.Cmd, []string{"migrate", "--dry-run"}) || cfg.Entrypoint != nil {
					t.Errorf("cmd %v entrypoint %v", cfg.Cmd, cfg.Entrypoint)
				}
			},
		},
		{
			name: "overridden image env and label kept",
			mutate: func(c *container.InspectResponse) {
				c.Config.Env = []string{"PATH=/usr/bin:/bin", "DEMO_VERSION=pinned"}
				c.Config.Labels["vendor"] = "me"
			},
			check: func(t *testing.T, cfg *container.Config) {
				if !slices.Equal(cfg.Env, []string{"DEMO_VERSION=pinned"}) || cfg.Labels["vendor"] != "me" {
					t.Errorf("env %v labels %v", cfg.Env, cfg.Labels)
				}
				if _, ok := cfg.Labels["org.opencontainers.image.version"]; ok {
					t.Errorf("image label kept: %v", cfg.Labels)
				}
			},
		},
		{
			name: "user healthcheck, user and workdir kept",
			mutate: func(c *container.InspectResponse) {
				c.Config.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
				c.Config.User = "root"
				c.Config.WorkingDir = "/tmp"
			},
			check: func(t *testing.T, cfg *container.Config) {
				if cfg.Healthcheck == nil || !slices.Equal(cfg.Healthcheck.Test, []string{"NONE"}) || cfg.User != "root" || cfg.WorkingDir != "/tmp" {
					t.Errorf("healthcheck %v user %q workdir %q", cfg.Healthcheck, cfg.User, cfg.WorkingDir)
				}
			},
		},
		{
			name:   "user hostname kept",
			mutate: func(c *container.InspectResponse) { c.Config.Hostname = "web-1" },
			check: func(t *testing.T, cfg *container.Config) {
				if cfg.Hostname != "web-1" {
					t.Errorf("hostname %q", cfg.Hostname)
				}
			},
		},
		{
			name: "host network: hostname and endpoints dropped",
			mutate: func(c *container.InspectResponse) {
				c.Config.Hostname = "the-host"
				c.HostConfig.NetworkMode = "host"
				c.NetworkSettings.Networks = map[string]*network.EndpointSettings{"host": {}}
			},
			check: func(t *testing.T, cfg *container.Config) {
				if cfg.Hostname != "" {
					t.Errorf("hostname %q", cfg.Hostname)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := inspected()
			tt.mutate(&old)
			opts, _ := replacementConfig(old, oldImage(), "web", "reg/web:v2", nil)
			tt.check(t, opts.Config)
		})
	}
}

func TestReplacementConfigWithoutOldImage(t *testing.T) {
	old := inspected()
	opts, _ := replacementConfig(old, nil, "web", "reg/web:v2", nil)
	if !slices.Equal(opts.Config.Env, old.Config.Env) || !reflect.DeepEqual(opts.Config.Labels, old.Config.Labels) {
		t.Errorf("without the old image everything is kept: env %v labels %v", opts.Config.Env, opts.Config.Labels)
	}
	if opts.Config.Hostname != "" {
		t.Errorf("default hostname kept: %q", opts.Config.Hostname)
	}
}

func TestReplacementConfigDoesNotMutateInput(t *testing.T) {
	old := inspected()
	replacementConfig(old, oldImage(), "web", "reg/web:v2", nil)
	if !reflect.DeepEqual(old, inspected()) {
		t.Error("replacementConfig changed the inspection it was given")
	}
}

func TestHostNetworkHasNoEndpoints(t *testing.T) {
	old := inspected()
	old.HostConfig.NetworkMode = "host"
	opts, extra := replacementConfig(old, oldImage(), "web", "img", nil)
	if opts.NetworkingConfig != nil || extra != nil {
		t.Errorf("host network: endpoints %+v extra %+v", opts.NetworkingConfig, extra)
	}
}

func TestLayerProgress(t *testing.T) {
	var l layerProgress
	steps := []struct {
		id, status string
		p          *jsonstream.Progress
		counts     bool
	}{
		{"v2", "Pulling from repo", nil, false},
		{"a", "Pulling fs layer", nil, true},
		{"b", "Already exists", nil, true},
		{"a", "Downloading", &jsonstream.Progress{Current: 50, Total: 200}, true},
		{"", "Digest: sha256:x", nil, false},
	}
	for _, s := range steps {
		if got := l.update(s.id, s.status, s.p); got != s.counts {
			t.Errorf("update(%q, %q) = %v, want %v", s.id, s.status, got, s.counts)
		}
	}
	if p := l.snapshot(); p.LayersTotal != 2 || p.LayersDone != 1 || p.BytesDone != 50 || p.BytesTotal != 200 {
		t.Errorf("snapshot = %+v", p)
	}
	l.update("a", "Pull complete", nil)
	if p := l.snapshot(); p.LayersDone != 2 {
		t.Errorf("after pull complete: %+v", p)
	}
}

// Labels given to the replacement are set over those it keeps, without
// changing the old container's.
func TestReplacementConfigSetsLabels(t *testing.T) {
	old := inspected()
	old.Config.Labels["dev.cutover.health-gate"] = `{"timeout_ms":1}` // an earlier replacement's
	opts, _ := replacementConfig(old, oldImage(), "web", "reg/web:v2", map[string]string{"dev.cutover.health-gate": `{"timeout_ms":60000}`})
	want := map[string]string{"dev.cutover.node": "node-a", "dev.cutover.service": "web", "dev.cutover.health-gate": `{"timeout_ms":60000}`}
	if !reflect.DeepEqual(opts.Config.Labels, want) {
		t.Errorf("labels %v, want %v", opts.Config.Labels, want)
	}
	if got := old.Config.Labels["dev.cutover.health-gate"]; got != `{"timeout_ms":1}` {
		t.Errorf("the old container's label changed to %q", got)
	}
}
