package docker

import (
	"slices"
	"testing"
)

func TestProgramsOf(t *testing.T) {
	for _, tc := range []struct {
		name       string
		entry, cmd []string
		want       []string
	}{
		{"command only", nil, []string{"keystone-manage", "db_sync"}, []string{"keystone-manage"}},
		{"entrypoint and args", []string{"/app"}, []string{"db-sync"}, []string{"/app"}},
		{"kolla dumb-init", []string{"dumb-init", "--single-child", "--"}, []string{"kolla_start"}, []string{"dumb-init", "kolla_start"}},
		{"tini without --", []string{"/sbin/tini"}, []string{"nova-manage", "db", "sync"}, []string{"/sbin/tini", "nova-manage"}},
		{"nothing", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := programsOf(tc.entry, tc.cmd); !slices.Equal(got, tc.want) {
				t.Errorf("programsOf(%q, %q) = %q, want %q", tc.entry, tc.cmd, got, tc.want)
			}
		})
	}
}
