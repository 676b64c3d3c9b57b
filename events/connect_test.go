package events_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
	"github.com/cutover-dev/cutover/events/natstest"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no credentials", "nats://10.0.0.1:4222", "nats://10.0.0.1:4222"},
		{"user and password", "nats://alice:s3cret@nats1:4222", "nats://alice:REDACTED@nats1:4222"},
		{"token", "nats://t0ken@nats1:4222", "nats://REDACTED@nats1:4222"},
		{"list", "nats://a:pw1@n1:4222,tls://pw2@n2:4222", "nats://a:REDACTED@n1:4222,tls://REDACTED@n2:4222"},
		{"unparsable", "nats://a:pw%zz@n1", "nats://REDACTED@n1"},
		{"postgres", "postgres://u:pgpw@db:5432/x?sslmode=disable", "postgres://u:REDACTED@db:5432/x?sslmode=disable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := events.RedactURL(tt.in)
			if got != tt.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, secret := range []string{"s3cret", "t0ken", "pw1", "pw2", "pgpw", "pw%zz"} {
				if strings.Contains(got, secret) {
					t.Fatalf("RedactURL(%q) = %q still holds %q", tt.in, got, secret)
				}
			}
		})
	}
}

func TestClientConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     events.ClientConfig
		wantErr []string
	}{
		{"url only", events.ClientConfig{URL: events.DefaultNATSURL}, nil},
		{"nkey and tls", events.ClientConfig{URL: "tls://n:4222", NKeyFile: "x.nk", CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}, nil},
		{"no url", events.ClientConfig{}, []string{"--nats: no server URL"}},
		{"two methods", events.ClientConfig{URL: "nats://n", NKeyFile: "x", CredsFile: "y"}, []string{"alternatives"}},
		{"password without user", events.ClientConfig{URL: "nats://n", PasswordFile: "p"}, []string{"needs --nats-user"}},
		{"user without password", events.ClientConfig{URL: "nats://n", User: "u"}, []string{"--nats-user needs --nats-password-file"}},
		{"cert without key", events.ClientConfig{URL: "nats://n", CertFile: "c"}, []string{"--nats-cert and --nats-key go together"}},
		{"every problem at once", events.ClientConfig{User: "u", CertFile: "c"}, []string{"no server URL", "--nats-user needs", "go together"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted %+v", tt.cfg)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestConnectWithPasswordAndToken connects to a real server requiring a
// user/password, and another requiring a token, with the secret read from a
// file; a wrong secret is refused, and no error shows it.
func TestConnectWithPasswordAndToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const pw, tok = "pa55-w0rd-xyz", "t0k3n-abc-123"
	tests := []struct {
		name   string
		conf   string
		good   events.ClientConfig
		bad    events.ClientConfig
		secret string
	}{
		{"password", `authorization { user: ops, password: "` + pw + `" }`,
			events.ClientConfig{User: "ops", PasswordFile: write("pw", pw+"\n")},
			events.ClientConfig{User: "ops", Password: "wrong-" + pw}, pw},
		{"token", `authorization { token: "` + tok + `" }`,
			events.ClientConfig{TokenFile: write("tok", tok)},
			events.ClientConfig{Token: "wrong-" + tok}, tok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ConfigFile: write(tt.name+".conf", tt.conf)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Shutdown)
			for _, c := range []*events.ClientConfig{&tt.good, &tt.bad} {
				c.URL = s.ClientURL()
			}
			nc, _, err := events.Connect(t.Context(), tt.good, "cutover-test")
			if err != nil {
				t.Fatalf("connect with the right %s: %v", tt.name, err)
			}
			nc.Close()
			nc, _, err = events.Connect(t.Context(), tt.bad, "cutover-test")
			if err == nil {
				nc.Close()
				t.Fatalf("connect with a wrong %s succeeded", tt.name)
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			anon := events.ClientConfig{URL: s.ClientURL()}
			if nc, _, err := events.Connect(t.Context(), anon, "cutover-test"); err == nil {
				nc.Close()
				t.Fatal("an anonymous client was let in")
			}
		})
	}
}

// TestConnectWarnsOfASecretFileOthersMayRead: a token file left 0644 is
// still used (see SecretFileWarnings for why not refused), and the
// service's log names the file and the chmod that fixes it, without the
// secret; a 0600 file draws no warning.
func TestConnectWarnsOfASecretFileOthersMayRead(t *testing.T) {
	const tok = "t0k3n-perm-456"
	dir := t.TempDir()
	conf := filepath.Join(dir, "tok.conf")
	if err := os.WriteFile(conf, []byte(`authorization { token: "`+tok+`" }`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), ConfigFile: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	for _, tc := range []struct {
		name string
		mode os.FileMode
		warn bool
	}{
		{"others may read", 0o644, true},
		{"group may read", 0o640, true},
		{"owner only", 0o600, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tok), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			var logs natstest.Logs
			nc, _, err := events.Connect(t.Context(), events.ClientConfig{URL: s.ClientURL(), TokenFile: path}, "cutover-test", events.WithLogger(logs.Logger()))
			if err != nil {
				t.Fatalf("connect with a %04o token file: %v", tc.mode, err)
			}
			nc.Close()
			out := logs.String()
			warned := strings.Contains(out, "chmod 600 "+path) && strings.Contains(out, "--nats-token-file")
			if warned != tc.warn {
				t.Errorf("mode %04o: warned %v, want %v; logs:\n%s", tc.mode, warned, tc.warn, out)
			}
			if strings.Contains(out, tok) {
				t.Errorf("the log shows the token:\n%s", out)
			}
		})
	}
	seed := filepath.Join(t.TempDir(), "planner.nk")
	if err := os.WriteFile(seed, []byte("SU..."), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(seed, 0o644); err != nil {
		t.Fatal(err)
	}
	if w := (events.ClientConfig{NKeyFile: seed}).SecretFileWarnings(); len(w) != 1 || !strings.Contains(w[0], "--nats-nkey "+seed) {
		t.Errorf("warnings for a 0644 seed = %q, want one naming --nats-nkey %s", w, seed)
	}
}
