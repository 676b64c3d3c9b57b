package events

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultNATSURL is where every binary looks for NATS without --nats.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// ClientConfig is how a binary reaches NATS: the server URL and how it
// proves who it is. main fills it from flags and environment (AddClientFlags);
// nothing else reads either. Secrets are given as files (or, for a password or
// token, through the environment), never on the command line.
type ClientConfig struct {
	// URL lists the servers, comma-separated (nats://host:4222 or tls://).
	URL string
	// CredsFile is a .creds file (user JWT and nkey seed) for a JWT-based
	// (operator mode) server.
	CredsFile string
	// NKeyFile holds a user nkey seed (SU...); `cutover nats-config` writes one
	// per identity.
	NKeyFile string
	// User and a password (PasswordFile, else Password) authenticate with a
	// user/password pair.
	User         string
	PasswordFile string
	Password     string
	// TokenFile, else Token, authenticates with a server token.
	TokenFile string
	Token     string
	// CAFile verifies the server's certificate (TLS); CertFile and KeyFile
	// present a client certificate (mutual TLS).
	CAFile, CertFile, KeyFile string
}

// AddClientFlags registers the NATS connection flags on fs, each defaulting to
// its environment variable read through getenv (main passes os.Getenv):
//
//	--nats URL                 CUTOVER_NATS
//	--nats-creds FILE          CUTOVER_NATS_CREDS
//	--nats-nkey FILE           CUTOVER_NATS_NKEY
//	--nats-user NAME           CUTOVER_NATS_USER
//	--nats-password-file FILE  CUTOVER_NATS_PASSWORD_FILE (or the value in CUTOVER_NATS_PASSWORD)
//	--nats-token-file FILE     CUTOVER_NATS_TOKEN_FILE (or the value in CUTOVER_NATS_TOKEN)
//	--nats-ca FILE             CUTOVER_NATS_CA
//	--nats-cert FILE           CUTOVER_NATS_CERT
//	--nats-key FILE            CUTOVER_NATS_KEY
//
// The flags fill the returned config once fs is parsed.
func AddClientFlags(fs *flag.FlagSet, getenv func(string) string) *ClientConfig {
	c := &ClientConfig{Password: getenv("CUTOVER_NATS_PASSWORD"), Token: getenv("CUTOVER_NATS_TOKEN")}
	str := func(p *string, name, env, def, usage string) {
		v := getenv(env)
		if v == "" {
			v = def
		}
		fs.StringVar(p, name, v, usage+" (env "+env+")")
	}
	str(&c.URL, "nats", "CUTOVER_NATS", DefaultNATSURL, "NATS server `URL`s, comma-separated; tls:// for TLS")
	str(&c.CredsFile, "nats-creds", "CUTOVER_NATS_CREDS", "", "NATS user credentials `FILE` (.creds: JWT and nkey seed)")
	str(&c.NKeyFile, "nats-nkey", "CUTOVER_NATS_NKEY", "", "`FILE` holding this identity's NATS nkey seed (cutover nats-config writes them)")
	str(&c.User, "nats-user", "CUTOVER_NATS_USER", "", "NATS user `NAME` (with --nats-password-file)")
	str(&c.PasswordFile, "nats-password-file", "CUTOVER_NATS_PASSWORD_FILE", "", "`FILE` holding the NATS user's password (or its value in CUTOVER_NATS_PASSWORD)")
	str(&c.TokenFile, "nats-token-file", "CUTOVER_NATS_TOKEN_FILE", "", "`FILE` holding a NATS token (or its value in CUTOVER_NATS_TOKEN)")
	str(&c.CAFile, "nats-ca", "CUTOVER_NATS_CA", "", "PEM `FILE` of the CA that signed the NATS server's certificate")
	str(&c.CertFile, "nats-cert", "CUTOVER_NATS_CERT", "", "PEM client certificate `FILE` for mutual TLS (with --nats-key)")
	str(&c.KeyFile, "nats-key", "CUTOVER_NATS_KEY", "", "PEM private key `FILE` of --nats-cert")
	return c
}

// Validate reports every problem of the config at once.
func (c ClientConfig) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("--nats: no server URL; give one, e.g. nats://127.0.0.1:4222"))
	}
	for _, raw := range strings.Split(c.URL, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		if _, err := url.Parse(raw); err != nil {
			errs = append(errs, fmt.Errorf("--nats: %s is not a URL; want nats://host:4222 or tls://host:4222", RedactURL(raw)))
		}
	}
	methods := 0
	for _, set := range []bool{c.CredsFile != "", c.NKeyFile != "", c.User != "", c.TokenFile != "" || c.Token != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		errs = append(errs, errors.New("--nats-creds, --nats-nkey, --nats-user and --nats-token-file (CUTOVER_NATS_TOKEN) are alternatives: give one"))
	}
	if c.User == "" && (c.PasswordFile != "" || c.Password != "") {
		errs = append(errs, errors.New("--nats-password-file (or CUTOVER_NATS_PASSWORD) needs --nats-user"))
	}
	if c.User != "" && c.PasswordFile == "" && c.Password == "" {
		errs = append(errs, errors.New("--nats-user needs --nats-password-file (or CUTOVER_NATS_PASSWORD)"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("--nats-cert and --nats-key go together: give both for mutual TLS, or neither"))
	}
	return errors.Join(errs...)
}

// Options turns the config into nats.go options, reading the secret files.
// name is the client's name in the server's monitoring; the client's reply
// inbox is _INBOX.<name>, so that an authorization can give every identity
// its own inbox and nobody else's replies (see `cutover nats-config`).
func (c ClientConfig) Options(name string) ([]nats.Option, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := validToken(name); err != nil {
		return nil, fmt.Errorf("NATS client name %s", err)
	}
	opts := []nats.Option{nats.Name(name), nats.CustomInboxPrefix("_INBOX." + name)}
	switch {
	case c.CredsFile != "":
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("--nats-creds: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w (want a file holding a user seed, SU...)", c.NKeyFile, err)
		}
		opts = append(opts, opt)
	case c.User != "":
		pw := c.Password
		if c.PasswordFile != "" {
			b, err := ReadSecret(c.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("--nats-password-file: %w", err)
			}
			pw = b
		}
		opts = append(opts, nats.UserInfo(c.User, pw))
	case c.TokenFile != "" || c.Token != "":
		tok := c.Token
		if c.TokenFile != "" {
			b, err := ReadSecret(c.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("--nats-token-file: %w", err)
			}
			tok = b
		}
		opts = append(opts, nats.Token(tok))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts, nil
}

// SecretFileWarnings names each secret file of c (credentials, nkey seed,
// password, token, TLS key) that its group or others may read, with the
// command that fixes it. They are warnings, not refusals: a Kubernetes
// secret volume is mounted 0644 unless told otherwise, and a file shared
// with a group (0640 root:cutover) can be on purpose; refusing them would
// stop a running deployment at its next restart. ssh refuses such a key;
// here the operator is told and the service still starts. A file that
// cannot be stat'ed is left to the read that follows, which names it.
func (c ClientConfig) SecretFileWarnings() []string {
	var out []string
	for _, f := range []struct{ flag, path string }{
		{"--nats-creds", c.CredsFile}, {"--nats-nkey", c.NKeyFile}, {"--nats-password-file", c.PasswordFile},
		{"--nats-token-file", c.TokenFile}, {"--nats-key", c.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s is readable by its group or others (mode %04o): only its owner should read a secret; run chmod 600 %s", f.flag, f.path, fi.Mode().Perm(), f.path))
	}
	return out
}

// ReadSecret reads a one-line secret file (a password, a token), without
// its trailing newline; an empty file is an error naming it.
func ReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// RedactURL hides the password or token a URL (or a comma-separated list of
// them) carries, for logs, events and errors: nats://alice:secret@host
// becomes nats://alice:REDACTED@host and nats://tok@host nats://REDACTED@host.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = redactOne(p)
	}
	return strings.Join(parts, ",")
}

func redactOne(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// Unparsable: hide whatever sits before an @, which may be a secret.
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
				return raw[:scheme+3] + "REDACTED" + raw[at:]
			}
			return "REDACTED" + raw[at:]
		}
		return raw
	}
	if u.User == nil {
		return u.String()
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "REDACTED")
	} else {
		u.User = url.User("REDACTED") // a lone user part is a token to NATS
	}
	return u.String()
}

// Reconnect backoff: a client that lost its server tries every URL of its
// list (and the servers the cluster told it about), then waits
// reconnectBase·2^round, capped at reconnectMax, with up to a quarter of
// jitter so a fleet of node-updaters does not reconnect in lock step.
const (
	reconnectBase = 250 * time.Millisecond
	reconnectMax  = 10 * time.Second
)

// ConnectOption changes how Connect sets up the bus and what it logs.
type ConnectOption func(*connectConfig)

type connectConfig struct {
	setup  SetupConfig
	logger *slog.Logger
	nats   []nats.Option
}

// WithSetup gives Setup's configuration (replicas, stream limits).
func WithSetup(cfg SetupConfig) ConnectOption {
	return func(c *connectConfig) { c.setup = cfg }
}

// WithLogger receives the connection's life: bus lost, bus regained, and
// Setup's messages (default: none, as the CLI wants).
func WithLogger(l *slog.Logger) ConnectOption {
	return func(c *connectConfig) { c.logger = l }
}

// WithNATSOptions adds nats.go options after Connect's own (a test pins a
// client to the first server of its list with nats.DontRandomize).
func WithNATSOptions(opts ...nats.Option) ConnectOption {
	return func(c *connectConfig) { c.nats = append(c.nats, opts...) }
}

// Connect dials NATS at cfg.URL (one URL or several, comma-separated: the
// servers of a cluster), opens JetStream and runs Setup. The connection
// never gives up: when it loses its server it tries every server it knows
// with a capped exponential backoff, and logs once when the bus is lost and
// once when it is back. name identifies the client in the server's
// monitoring and names its reply inbox (_INBOX.<name>). Errors and logs show
// URLs redacted.
func Connect(ctx context.Context, cfg ClientConfig, name string, opts ...ConnectOption) (*nats.Conn, jetstream.JetStream, error) {
	cc := connectConfig{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cc)
	}
	if cc.setup.Logger == nil {
		cc.setup.Logger = cc.logger
	}
	log := cc.logger
	nopts, err := cfg.Options(name)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range cfg.SecretFileWarnings() {
		log.Warn(w)
	}
	var lostAt time.Time // written and read on nats.go's one callback goroutine
	// The server it was on: once the bus is lost nc.ConnectedUrl() is empty.
	var lastServer atomic.Pointer[string]
	onServer := func(nc *nats.Conn) {
		u := RedactURL(nc.ConnectedUrl())
		lastServer.Store(&u)
	}
	// While Setup runs, an identity without admin rights (a node-updater)
	// may be refused creating what is missing: expected, and waited out.
	var settingUp atomic.Bool
	// The first other refusal while Setup runs (a seed of another
	// identity is refused its reply inbox): Setup then only times out, so
	// its error names what the server said.
	var refused atomic.Pointer[error]
	nopts = append(nopts,
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if nc.IsClosed() {
				return // our own Close, not a lost bus
			}
			lostAt = time.Now()
			server := ""
			if p := lastServer.Load(); p != nil {
				server = *p
			}
			log.Warn("lost the bus; reconnecting to any server of the list", "server", server, "err", err, "servers", RedactURL(strings.Join(nc.Servers(), ",")))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			onServer(nc)
			log.Info("regained the bus", "server", RedactURL(nc.ConnectedUrl()), "down", time.Since(lostAt).Round(time.Millisecond))
		}),
		// The server's asynchronous errors, a permissions violation above
		// all: without this a refused publish or subscription would only
		// show as a timeout. It names the subject, never a credential.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if settingUp.Load() && setupRefusal(err) {
				log.Info("this identity may not create the stream or its buckets; waiting for a service that may (the planner)", "err", err)
				return
			}
			if settingUp.Load() && errors.Is(err, nats.ErrPermissionViolation) {
				refused.CompareAndSwap(nil, &err)
			}
			if sub != nil {
				log.Warn("NATS refused or dropped something", "err", err, "subscription", sub.Subject)
				return
			}
			log.Warn("NATS refused or dropped something (is this identity's authorization current? cutover nats-config)", "err", err)
		}),
	)
	nopts = append(nopts, cc.nats...)
	nc, err := nats.Connect(cfg.URL, nopts...)
	if err != nil {
		return nil, nil, ConnectError(cfg.URL, err)
	}
	onServer(nc)
	where := RedactURL(nc.ConnectedUrl())
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("open JetStream at %s: %w", where, err)
	}
	settingUp.Store(true)
	err = Setup(ctx, js, cc.setup)
	settingUp.Store(false)
	if err != nil {
		nc.Close()
		if r := refused.Load(); r != nil {
			id := strings.TrimPrefix(name, "cutover-")
			return nil, nil, fmt.Errorf("%w: the server refused this identity: %w (are these the credentials of %s, e.g. the seed %s.nk that cutover nats-config wrote, and is the server's authorization current?)", err, *r, id, id)
		}
		return nil, nil, fmt.Errorf("%w (is JetStream enabled on %s, and may this identity use it?)", err, where)
	}
	return nc, js, nil
}

// setupRefusal reports whether err is the server refusing this identity
// the JetStream calls Setup makes to create a missing stream or bucket
// (creating a KV bucket asks for the account's JetStream info first).
func setupRefusal(err error) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, `"$JS.API.STREAM.CREATE.`) || strings.Contains(msg, `"$JS.API.INFO"`)
}

// ConnectError says which servers a failed connection tried and what to do.
func ConnectError(urls string, err error) error {
	var list []string
	for _, u := range strings.Split(urls, ",") {
		if u = strings.TrimSpace(u); u != "" {
			list = append(list, RedactURL(u))
		}
	}
	return fmt.Errorf("connect to NATS: %w; tried %s (%s)", err, strings.Join(list, ", "), connectHint(err))
}

// connectHint is what to do about a failed connection: a refused
// certificate or credentials say which, anything else the usual checks.
func connectHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return "the servers' certificate is signed by a CA this client does not trust: give that CA with --nats-ca FILE (env CUTOVER_NATS_CA)"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "a server's certificate has expired or is not valid yet: renew it on the server, or check this host's clock"
	case errors.As(err, &host):
		return "the server's certificate does not name the host in --nats: dial a name or address the certificate carries"
	case errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization violation"):
		return "the server refused these credentials: give this identity's own seed with --nats-nkey (cutover nats-config writes one per identity) and check that the servers include the current authorization.conf"
	}
	return "is a server running there, and are the credentials right? give every server of the cluster with --nats URL1,URL2,...; cutover dev starts one on 127.0.0.1:4222"
}

// reconnectDelay is the pause after each round over the server list.
func reconnectDelay(round int) time.Duration {
	d := reconnectMax
	if round < 16 {
		d = min(reconnectBase<<round, reconnectMax)
	}
	return d + rand.N(d/4+1)
}
