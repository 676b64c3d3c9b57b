// Package httpauth protects the auditor's HTTP endpoints (dashboard, /api,
// /metrics) with a bearer token or basic auth, and serves them over TLS when
// given a certificate. main fills Config from flags (AddFlags) and the
// environment; secrets come from files or the environment, never argv.
package httpauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/cutover-dev/cutover/events"
)

// Config says how HTTP clients authenticate and whether TLS is used.
type Config struct {
	// Token, when set, is accepted as "Authorization: Bearer <token>".
	Token string
	// User and Password, when set, are accepted as basic auth.
	User, Password string
	// CertFile and KeyFile, when set, serve HTTPS.
	CertFile, KeyFile string
	// Insecure allows a non-loopback address without authentication.
	Insecure bool
}

// Flags are the command-line form of Config; Resolve reads the secret files.
type Flags struct {
	TokenFile, User, PasswordFile, CertFile, KeyFile string
	Token, Password                                  string // from the environment only
	Insecure                                         bool
}

// AddFlags registers the HTTP authentication flags on fs, defaulting from the
// environment through getenv (main passes os.Getenv):
//
//	--http-token-file FILE     CUTOVER_HTTP_TOKEN_FILE (or the value in CUTOVER_HTTP_TOKEN)
//	--http-user NAME           CUTOVER_HTTP_USER
//	--http-password-file FILE  CUTOVER_HTTP_PASSWORD_FILE (or the value in CUTOVER_HTTP_PASSWORD)
//	--http-tls-cert FILE       CUTOVER_HTTP_TLS_CERT
//	--http-tls-key FILE        CUTOVER_HTTP_TLS_KEY
//	--insecure                 serve a non-loopback address without authentication
func AddFlags(fs *flag.FlagSet, getenv func(string) string) *Flags {
	f := &Flags{Token: getenv("CUTOVER_HTTP_TOKEN"), Password: getenv("CUTOVER_HTTP_PASSWORD")}
	str := func(p *string, name, env, usage string) {
		fs.StringVar(p, name, getenv(env), usage+" (env "+env+")")
	}
	str(&f.TokenFile, "http-token-file", "CUTOVER_HTTP_TOKEN_FILE", "`FILE` holding the bearer token HTTP clients must send (or its value in CUTOVER_HTTP_TOKEN)")
	str(&f.User, "http-user", "CUTOVER_HTTP_USER", "basic auth user `NAME` for HTTP clients (with --http-password-file)")
	str(&f.PasswordFile, "http-password-file", "CUTOVER_HTTP_PASSWORD_FILE", "`FILE` holding the basic auth password (or its value in CUTOVER_HTTP_PASSWORD)")
	str(&f.CertFile, "http-tls-cert", "CUTOVER_HTTP_TLS_CERT", "PEM certificate `FILE`: serve HTTPS")
	str(&f.KeyFile, "http-tls-key", "CUTOVER_HTTP_TLS_KEY", "PEM private key `FILE` of --http-tls-cert")
	fs.BoolVar(&f.Insecure, "insecure", false, "allow serving HTTP (and, in cutover dev, NATS) on a non-loopback address without authentication or TLS")
	return f
}

// Resolve reads the secret files and checks the flags, reporting every
// problem at once.
func (f Flags) Resolve() (Config, error) {
	c := Config{Token: f.Token, User: f.User, Password: f.Password, CertFile: f.CertFile, KeyFile: f.KeyFile, Insecure: f.Insecure}
	var errs []error
	if f.TokenFile != "" {
		t, err := events.ReadSecret(f.TokenFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--http-token-file: %w", err))
		}
		c.Token = t
	}
	if f.PasswordFile != "" {
		p, err := events.ReadSecret(f.PasswordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("--http-password-file: %w", err))
		}
		c.Password = p
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("--http-user and --http-password-file (CUTOVER_HTTP_PASSWORD) go together"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("--http-tls-cert and --http-tls-key go together"))
	}
	return c, errors.Join(errs...)
}

// Enabled reports whether clients must authenticate.
func (c Config) Enabled() bool { return c.Token != "" || c.User != "" }

// TLS reports whether HTTPS is served.
func (c Config) TLS() bool { return c.CertFile != "" }

// CheckListen refuses to serve addr to other machines without
// authentication, unless Insecure.
func (c Config) CheckListen(addr string) error {
	if c.Enabled() || c.Insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("HTTP address %q: %w (want host:port, e.g. 127.0.0.1:8080)", addr, err)
	}
	if IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("HTTP address %s is reachable from other machines and the dashboard, /api and /metrics would answer anyone: give --http-token-file or --http-user with --http-password-file (and --http-tls-cert/--http-tls-key), listen on 127.0.0.1, or accept the risk with --insecure", addr)
}

// IsLoopback reports whether host answers only this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Wrap returns h behind the configured authentication (h itself when none
// is). A refused request gets 401 with a WWW-Authenticate challenge and no
// body from h.
func (c Config) Wrap(h http.Handler) http.Handler {
	if !c.Enabled() {
		return h
	}
	token := sha256.Sum256([]byte(c.Token))
	user := sha256.Sum256([]byte(c.User))
	pass := sha256.Sum256([]byte(c.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.allowed(r, token, user, pass) {
			h.ServeHTTP(w, r)
			return
		}
		if c.User != "" {
			w.Header().Add("WWW-Authenticate", `Basic realm="cutover", charset="UTF-8"`)
		}
		if c.Token != "" {
			w.Header().Add("WWW-Authenticate", `Bearer realm="cutover"`)
		}
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
}

// allowed compares hashes in constant time, so a wrong secret's length or
// prefix tells nothing.
func (c Config) allowed(r *http.Request, token, user, pass [32]byte) bool {
	if c.Token != "" {
		if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got := sha256.Sum256([]byte(strings.TrimSpace(v)))
			if subtle.ConstantTimeCompare(got[:], token[:]) == 1 {
				return true
			}
		}
	}
	if c.User != "" {
		if u, p, ok := r.BasicAuth(); ok {
			gu, gp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
			if subtle.ConstantTimeCompare(gu[:], user[:])&subtle.ConstantTimeCompare(gp[:], pass[:]) == 1 {
				return true
			}
		}
	}
	return false
}

// Serve serves srv on ln, over TLS when configured. It returns what
// srv.Serve or srv.ServeTLS returns.
func (c Config) Serve(srv *http.Server, ln net.Listener) error {
	if c.TLS() {
		return srv.ServeTLS(ln, c.CertFile, c.KeyFile)
	}
	return srv.Serve(ln)
}
