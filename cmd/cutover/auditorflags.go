package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/cli"
	"github.com/cutover-dev/cutover/cmd/cutover/internal/upgrades"
)

// auditorOptions are the flags of the commands that may read the
// auditor's history API.
type auditorOptions struct {
	cfg upgrades.AuditorConfig
}

// auditorFlags adds --auditor (what says what it is for) and the flags
// that authenticate to it, as the auditor's --http-* flags expect:
// a bearer token or basic auth, over HTTPS with a CA of its own. Secrets
// come from files or the environment (the same CUTOVER_HTTP_* variables
// the auditor reads), never from the command line.
func auditorFlags(cmd *cobra.Command, what string) *auditorOptions {
	o := &auditorOptions{cfg: upgrades.AuditorConfig{Token: os.Getenv("CUTOVER_HTTP_TOKEN"), Password: os.Getenv("CUTOVER_HTTP_PASSWORD")}}
	f := cmd.Flags()
	f.StringVar(&o.cfg.URL, "auditor", cli.EnvOr("CUTOVER_AUDITOR", ""), what+", e.g. http://127.0.0.1:8080 (cutover dev --http, auditor --http; env CUTOVER_AUDITOR)")
	f.StringVar(&o.cfg.TokenFile, "auditor-token-file", cli.EnvOr("CUTOVER_HTTP_TOKEN_FILE", ""), "`FILE` holding the bearer token the auditor's API wants (or its value in CUTOVER_HTTP_TOKEN)")
	f.StringVar(&o.cfg.User, "auditor-user", cli.EnvOr("CUTOVER_HTTP_USER", ""), "basic auth user `NAME` of the auditor's API, with --auditor-password-file (env CUTOVER_HTTP_USER)")
	f.StringVar(&o.cfg.PasswordFile, "auditor-password-file", cli.EnvOr("CUTOVER_HTTP_PASSWORD_FILE", ""), "`FILE` holding the basic auth password of --auditor-user (or its value in CUTOVER_HTTP_PASSWORD)")
	f.StringVar(&o.cfg.CAFile, "auditor-ca", cli.EnvOr("CUTOVER_AUDITOR_CA", ""), "PEM `FILE` of the CA that signed an https auditor's certificate, trusted besides the system's (env CUTOVER_AUDITOR_CA)")
	return o
}

// auditor returns the auditor client the flags describe, nil without --auditor.
func (o *auditorOptions) auditor() (*upgrades.Auditor, error) {
	if o.cfg.URL == "" {
		return nil, nil
	}
	return upgrades.NewAuditor(o.cfg)
}
