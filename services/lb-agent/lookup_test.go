package lbagent

import (
	"strings"
	"testing"
)

func TestServerLookup(t *testing.T) {
	a, err := New(Config{
		Servers: map[string]Server{
			"controller1/nova_api": {Backend: "nova_api_back", Server: "ctl-1"}, // one node's own entry
			"web-1":                {Backend: "web", Server: "s1"},              // a name unique across nodes
		},
		Backends: map[string]string{"nova_api": "nova_api_back", "web-1": "other"},
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		node, container string
		want            Server
		ok              bool
	}{
		{"controller1", "nova_api", Server{"nova_api_back", "ctl-1"}, true}, // node/container first
		{"controller2", "nova_api", Server{"nova_api_back", "controller2"}, true},
		{"", "nova_api", Server{}, false}, // a backend rule needs the node
		{"anywhere", "web-1", Server{"web", "s1"}, true},
		{"", "web-1", Server{"web", "s1"}, true},
		{"controller1", "keystone", Server{}, false},
	}
	for _, tc := range tests {
		got, ok := a.server(tc.node, tc.container)
		if got != tc.want || ok != tc.ok {
			t.Errorf("server(%q, %q) = %+v, %v; want %+v, %v", tc.node, tc.container, got, ok, tc.want, tc.ok)
		}
	}
}

func TestConfigNamesTheBadEntry(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", Config{}, "no servers"},
		{"no node before the slash", Config{Servers: map[string]Server{"/nova_api": {"b", "s"}}}, `server "/nova_api"`},
		{"two slashes", Config{Servers: map[string]Server{"a/b/c": {"b", "s"}}}, `server "a/b/c"`},
		{"no server", Config{Servers: map[string]Server{"web-1": {Backend: "web"}}}, `server "web-1"="web/": want [node/]container=backend/server`},
		{"empty backend", Config{Backends: map[string]string{"nova_api": ""}}, `backend "nova_api"="": want container=backend`},
	}
	for _, tc := range tests {
		if _, err := New(tc.cfg, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}
