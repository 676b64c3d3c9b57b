package stack

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natsauth"
	"github.com/cutover-dev/cutover/services/auditor/httpauth"
)

// CredsDir is the directory under the data directory holding the
// authorization and nkey seeds cutover dev generated.
const CredsDir = "nats"

// DevNATS is how cutover dev and the demos secure their embedded server.
type DevNATS struct {
	// TLSCert and TLSKey, when set, make the server require TLS with this
	// certificate; in-process clients trust the certificate itself.
	TLSCert, TLSKey string
	// Insecure allows a non-loopback listen address without TLS.
	Insecure bool
}

// Secure generates (on first start) or reuses the credentials of every
// identity in dataDir/nats (seeds mode 0600), writes the server's
// configuration requiring them, and sets cfg so that the embedded server
// uses it and every service connects on its own identity. The CLI finds the
// cli identity's seed there by default.
func (d DevNATS) Secure(cfg *Config) error {
	if err := CheckListen(cfg.NATSListen, d.TLSCert != "", d.Insecure); err != nil {
		return err
	}
	if (d.TLSCert == "") != (d.TLSKey == "") {
		return errors.New("--nats-tls-cert and --nats-tls-key go together: give both, or neither")
	}
	dir := filepath.Join(cfg.DataDir, CredsDir)
	if _, err := natsauth.Write(dir, natsauth.Fleet{Nodes: cfg.Nodes}); err != nil {
		return fmt.Errorf("generate NATS credentials in %s: %w", dir, err)
	}
	conf := fmt.Sprintf("# Written by cutover; regenerated at every start.\ninclude %q\n", natsauth.AuthorizationFile)
	if d.TLSCert != "" {
		cert, err := filepath.Abs(d.TLSCert)
		if err != nil {
			return err
		}
		key, err := filepath.Abs(d.TLSKey)
		if err != nil {
			return err
		}
		conf += fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n}\n", cert, key)
	}
	confPath := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", confPath, err)
	}
	cfg.NATSConfigFile = confPath
	cfg.Client = func(identity string) events.ClientConfig {
		return events.ClientConfig{NKeyFile: natsauth.SeedFile(dir, identity), CAFile: d.TLSCert}
	}
	return nil
}

// CheckListen refuses a NATS listen address reachable from other machines
// without TLS, unless insecure: credentials and commands would cross the
// network in clear.
func CheckListen(listen string, tls, insecure bool) error {
	if tls || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--nats-listen %q: %w (want host:port, e.g. 127.0.0.1:4222)", listen, err)
	}
	if httpauth.IsLoopback(host) {
		return nil
	}
	return fmt.Errorf("--nats-listen %s is reachable from other machines and NATS would run without TLS: give --nats-tls-cert and --nats-tls-key, listen on 127.0.0.1, or accept the risk with --insecure", listen)
}
