package testkit

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

func TestCreateOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    ContainerOpts
		wantErr bool
		check   func(t *testing.T, got client.ContainerCreateOptions)
	}{
		{
			name: "labels volumes network ports",
			opts: ContainerOpts{
				Name: "web-1", Image: "img:v1", Node: "n1", Service: "web",
				Labels:  map[string]string{LabelTest: "run"},
				Env:     []string{"A=1"},
				Volumes: map[string]string{"web-data": "/data"},
				Binds:   []string{"/etc/hosts:/h:ro"},
				Network: "net", Aliases: []string{"web"}, IPv4: "10.1.2.10",
				Ports:         map[string]string{"8080/tcp": "18080", "9090": ""},
				RestartPolicy: "unless-stopped",
			},
			check: func(t *testing.T, got client.ContainerCreateOptions) {
				if got.Name != "web-1" || got.Config.Image != "img:v1" || !slices.Equal(got.Config.Env, []string{"A=1"}) {
					t.Errorf("name/image/env: %s %s %v", got.Name, got.Config.Image, got.Config.Env)
				}
				l := got.Config.Labels
				if l[LabelNode] != "n1" || l[LabelService] != "web" || l[LabelTest] != "run" {
					t.Errorf("labels %v", l)
				}
				if want := []string{"/etc/hosts:/h:ro", "web-data:/data"}; !slices.Equal(got.HostConfig.Binds, want) {
					t.Errorf("binds %v, want %v", got.HostConfig.Binds, want)
				}
				if got.HostConfig.NetworkMode != "net" || got.HostConfig.RestartPolicy.Name != container.RestartPolicyUnlessStopped {
					t.Errorf("network mode %q restart %q", got.HostConfig.NetworkMode, got.HostConfig.RestartPolicy.Name)
				}
				ep := got.NetworkingConfig.EndpointsConfig["net"]
				if ep == nil || !slices.Equal(ep.Aliases, []string{"web"}) || ep.IPAMConfig.IPv4Address != netip.MustParseAddr("10.1.2.10") {
					t.Errorf("endpoint %+v", ep)
				}
				p8080, p9090 := network.MustParsePort("8080/tcp"), network.MustParsePort("9090/tcp")
				if _, ok := got.Config.ExposedPorts[p9090]; !ok {
					t.Errorf("9090 not exposed: %v", got.Config.ExposedPorts)
				}
				if b := got.HostConfig.PortBindings[p8080]; len(b) != 1 || b[0].HostPort != "18080" {
					t.Errorf("8080 bindings %v", b)
				}
				if _, ok := got.HostConfig.PortBindings[p9090]; ok {
					t.Errorf("9090 published, want exposed only")
				}
			},
		},
		{
			name: "caller labels are not mutated",
			opts: ContainerOpts{Image: "img", Node: "n1", Labels: map[string]string{"k": "v"}},
			check: func(t *testing.T, got client.ContainerCreateOptions) {
				if got.Config.Labels[LabelNode] != "n1" || got.Config.Labels["k"] != "v" {
					t.Errorf("labels %v", got.Config.Labels)
				}
			},
		},
		{name: "no image", opts: ContainerOpts{Name: "x"}, wantErr: true},
		{name: "alias without network", opts: ContainerOpts{Image: "i", Aliases: []string{"a"}}, wantErr: true},
		{name: "ip without network", opts: ContainerOpts{Image: "i", IPv4: "10.0.0.1"}, wantErr: true},
		{name: "bad ip", opts: ContainerOpts{Image: "i", Network: "n", IPv4: "10.0.0"}, wantErr: true},
		{name: "ipv6 as ipv4", opts: ContainerOpts{Image: "i", Network: "n", IPv4: "fd00::1"}, wantErr: true},
		{name: "bad port", opts: ContainerOpts{Image: "i", Ports: map[string]string{"http": ""}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]string{}
			for k, v := range tt.opts.Labels {
				before[k] = v
			}
			got, err := createOptions(tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if len(tt.opts.Labels) != len(before) {
				t.Errorf("createOptions mutated caller labels: %v", tt.opts.Labels)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

func TestCleanupRejectsBareKey(t *testing.T) {
	if err := Cleanup(context.Background(), nil, LabelTest); err == nil {
		t.Fatal("Cleanup accepted a label without a value")
	}
}
