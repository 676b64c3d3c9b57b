package upgrades

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewAuditorRefusesBadSettings: each mistake is named with its flag,
// all at once, and a secret never comes from the address.
func TestNewAuditorRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	pw := filepath.Join(dir, "pw")
	for _, f := range []string{notPEM, pw} {
		if err := os.WriteFile(f, []byte("not a certificate\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		cfg  AuditorConfig
		want []string // each in the error; none: no error
	}{
		{"http with basic auth", AuditorConfig{URL: "http://127.0.0.1:8080/", User: "ops", PasswordFile: pw}, nil},
		{"no scheme", AuditorConfig{URL: "127.0.0.1:8080"}, []string{"--auditor", "http://"}},
		{"password in the address", AuditorConfig{URL: "https://ops:pw@auditor:8080"}, []string{"--auditor-password-file"}},
		{"user without password", AuditorConfig{URL: "https://auditor", User: "ops"}, []string{"go together"}},
		{"missing files, not a CA", AuditorConfig{URL: "https://auditor", TokenFile: filepath.Join(dir, "none"), CAFile: notPEM},
			[]string{"--auditor-token-file", "--auditor-ca " + notPEM + ": no PEM certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewAuditor(tt.cfg)
			if len(tt.want) == 0 {
				if err != nil || a.Base != strings.TrimSuffix(tt.cfg.URL, "/") || a.Password != "not a certificate" {
					t.Fatalf("NewAuditor = %+v, %v", a, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewAuditor(%+v) = %+v, want an error", tt.cfg, a)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
