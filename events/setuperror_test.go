package events

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestSetupErrorHints: each JetStream refusal Setup can meet on a create
// names the server setting and cutover's flag to change.
func TestSetupErrorHints(t *testing.T) {
	cfg := SetupConfig{Replicas: 3, MaxBytes: 10 << 30}
	for _, tc := range []struct {
		name string
		code int
		desc string
		want []string
	}{
		{"no peers: insufficient storage", 10005, "no suitable peers for placement, insufficient storage",
			[]string{"max_file_store", "--stream-max-bytes 10737418240", "3 JetStream servers"}},
		{"no peers: peer offline", 10005, "no suitable peers for placement, peer offline",
			[]string{"online", "--stream-replicas"}},
		{"no peers: jetstream off", 10005, "no suitable peers for placement, jetstream not enabled in cluster",
			[]string{"enable JetStream"}},
		{"no peers: tags", 10005, "no suitable peers for placement, tags not matched ['az:1']",
			[]string{"server_tags"}},
		{"no peers: other", 10005, "no suitable peers for placement, miscellaneous issue",
			[]string{"--stream-replicas", "--stream-max-bytes"}},
		{"insufficient storage", 10047, "insufficient storage resources available",
			[]string{"max_file_store", "--stream-max-bytes"}},
		{"insufficient resources", 10023, "insufficient resources",
			[]string{"max_file_store", "--stream-max-bytes"}},
		{"max streams", 10027, "maximum number of streams reached",
			[]string{"max_streams"}},
		{"no cluster", 10074, "replicas > 1 not supported in non-clustered mode",
			[]string{"--stream-replicas 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := setupError("create stream CUTOVER", cfg, &jetstream.APIError{ErrorCode: jetstream.ErrorCode(tc.code), Description: tc.desc})
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), tc.desc) {
				t.Errorf("%v\nlacks the server's own words %q", err, tc.desc)
			}
		})
	}
}
