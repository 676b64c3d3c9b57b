package busflag_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events/busflag"
)

func TestFlagsAndEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		replica int
		raise   bool
		bytes   int64
		err     string
	}{
		{name: "defaults", replica: 1, bytes: 10 << 30},
		{name: "env", env: map[string]string{busflag.EnvReplicas: "3", busflag.EnvRaiseReplicas: "true", busflag.EnvMaxBytes: "2GiB"}, replica: 3, raise: true, bytes: 2 << 30},
		{name: "flag beats env", env: map[string]string{busflag.EnvReplicas: "3"}, args: []string{"--stream-replicas", "5", "--stream-max-bytes", "512M"}, replica: 5, bytes: 512 << 20},
		{name: "bad env", env: map[string]string{busflag.EnvReplicas: "three"}, err: "CUTOVER_STREAM_REPLICAS=\"three\""},
		{name: "too many replicas", args: []string{"--stream-replicas", "7"}, err: "want 1 to 5"},
		{name: "zero replicas", args: []string{"--stream-replicas", "0"}, err: "--stream-replicas 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := busflag.Register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := f.Config(nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Replicas != tc.replica || cfg.RaiseReplicas != tc.raise || cfg.MaxBytes != tc.bytes {
				t.Errorf("got replicas %d raise %v max bytes %d", cfg.Replicas, cfg.RaiseReplicas, cfg.MaxBytes)
			}
		})
	}
}

func TestSizeRefusesGarbage(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	busflag.Register(fs)
	for _, bad := range []string{"ten", "-1", "5PB", "1.5GiB"} {
		if err := fs.Parse([]string{"--stream-max-bytes", bad}); err == nil {
			t.Errorf("--stream-max-bytes %s accepted", bad)
		}
	}
}
