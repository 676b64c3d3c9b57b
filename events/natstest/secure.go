package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/embednats"
	"github.com/cutover-dev/cutover/events/natsauth"
)

// Secure is a running server that requires TLS with client certificates and
// the authorization `cutover nats-config` generates for a fleet.
type Secure struct {
	*server.Server
	// Dir holds the certificates, the seeds and the configuration.
	Dir string
	// CA, Cert and Key are the CA and the client certificate every identity
	// presents.
	CA, Cert, Key string
	// Identities are the generated identities.
	Identities []natsauth.Identity
}

// StartSecure generates a CA, a server and a client certificate, the
// authorization and seeds of fleet, and runs a server requiring all of them
// on a free loopback port until the test ends.
func StartSecure(t testing.TB, fleet natsauth.Fleet) *Secure {
	t.Helper()
	dir := t.TempDir()
	s := &Secure{Dir: dir}
	var err error
	s.CA, s.Cert, s.Key, err = WriteCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	credsDir := filepath.Join(dir, "creds")
	if s.Identities, err = natsauth.Write(credsDir, fleet); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("include %q\ntls {\n  cert_file: %q\n  key_file: %q\n  ca_file: %q\n  verify: true\n}\n",
		filepath.Join("creds", natsauth.AuthorizationFile), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"), s.CA)
	confPath := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Server, err = embednats.Start(embednats.Config{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "js"), Name: "secure-test", ConfigFile: confPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	})
	return s
}

// Client is the connection config of one generated identity: TLS with the
// client certificate and the identity's nkey seed.
func (s *Secure) Client(identity string) events.ClientConfig {
	return events.ClientConfig{
		URL:      s.ClientURL(),
		NKeyFile: natsauth.SeedFile(filepath.Join(s.Dir, "creds"), identity),
		CAFile:   s.CA, CertFile: s.Cert, KeyFile: s.Key,
	}
}

// WriteCerts writes a CA (ca.pem), a server certificate for 127.0.0.1 and
// localhost (server.pem, server-key.pem) and a client certificate
// (client.pem, client-key.pem) into dir, and returns the CA's and the
// client's paths.
func WriteCerts(dir string) (ca, cert, key string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", err
	}
	ca = filepath.Join(dir, "ca.pem")
	if err := writePEM(ca, "CERTIFICATE", caDER); err != nil {
		return "", "", "", err
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) error {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "cutover test " + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", kb)
	}
	if err := leaf("server", 2, x509.ExtKeyUsageServerAuth); err != nil {
		return "", "", "", err
	}
	if err := leaf("client", 3, x509.ExtKeyUsageClientAuth); err != nil {
		return "", "", "", err
	}
	return ca, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
