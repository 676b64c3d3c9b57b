package httpauth_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events/natstest"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("secret history")) })

func TestWrap(t *testing.T) {
	tests := []struct {
		name string
		cfg  httpauth.Config
		req  func(*http.Request)
		want int
	}{
		{"no auth configured", httpauth.Config{}, func(*http.Request) {}, 200},
		{"token", httpauth.Config{Token: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, 200},
		{"no token", httpauth.Config{Token: "tok"}, func(*http.Request) {}, 401},
		{"wrong token", httpauth.Config{Token: "tok"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok2") }, 401},
		{"token as basic", httpauth.Config{Token: "tok"}, func(r *http.Request) { r.SetBasicAuth("x", "tok") }, 401},
		{"basic", httpauth.Config{User: "ops", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("ops", "pw") }, 200},
		{"basic wrong password", httpauth.Config{User: "ops", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("ops", "pw2") }, 401},
		{"basic wrong user", httpauth.Config{User: "ops", Password: "pw"}, func(r *http.Request) { r.SetBasicAuth("op", "pw") }, 401},
		{"both, token used", httpauth.Config{Token: "tok", User: "ops", Password: "pw"}, func(r *http.Request) { r.Header.Set("Authorization", "Bearer tok") }, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/upgrades", nil)
			tt.req(r)
			w := httptest.NewRecorder()
			tt.cfg.Wrap(ok).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d", w.Code, tt.want)
			}
			if w.Code == 401 && (strings.Contains(w.Body.String(), "secret") || w.Header().Get("WWW-Authenticate") == "") {
				t.Fatalf("refusal leaks the page or has no challenge: %q %v", w.Body.String(), w.Header())
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr string
		cfg  httpauth.Config
		ok   bool
	}{
		{"127.0.0.1:8080", httpauth.Config{}, true},
		{"localhost:8080", httpauth.Config{}, true},
		{"0.0.0.0:8080", httpauth.Config{}, false},
		{":8080", httpauth.Config{}, false},
		{"0.0.0.0:8080", httpauth.Config{Token: "t"}, true},
		{"0.0.0.0:8080", httpauth.Config{Insecure: true}, true},
	}
	for _, tt := range tests {
		err := tt.cfg.CheckListen(tt.addr)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListen(%q, %+v) = %v, want ok=%v", tt.addr, tt.cfg, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("error %q does not name the way out", err)
		}
	}
}

func TestResolveReadsSecretFilesAndReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "tok")
	if err := os.WriteFile(tok, []byte("t0k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := httpauth.Flags{TokenFile: tok}.Resolve()
	if err != nil || c.Token != "t0k" {
		t.Fatalf("Resolve = %+v, %v", c, err)
	}
	_, err = httpauth.Flags{TokenFile: filepath.Join(dir, "missing"), User: "ops", CertFile: "c"}.Resolve()
	for _, w := range []string{"--http-token-file", "--http-user and --http-password-file", "--http-tls-cert and --http-tls-key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

// TestServeTLS serves over HTTPS with a certificate made here; a client that
// trusts the CA and sends the token gets the page, a plain HTTP client gets
// nothing.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, _, err := natstest.WriteCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpauth.Config{Token: "tok", CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: cfg.Wrap(ok)}
	go func() { _ = cfg.Serve(srv, ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("HTTPS with the CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP got the page")
		}
	}
}
