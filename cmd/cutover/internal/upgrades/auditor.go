package upgrades

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/planner"
)

// Auditor reads the auditor's history API (auditor --http, cutover dev
// --http), which keeps every upgrade's events as long as its database does.
type Auditor struct {
	// Base is the API's address, e.g. https://auditor.example:8080.
	Base string
	// Token, when set, is sent as a bearer token; User and Password, when
	// set, as basic auth: whichever the auditor was given.
	Token, User, Password string
	// Client sends the requests (nil: http.DefaultClient).
	Client *http.Client
}

// AuditorConfig says how to reach the auditor: main fills it from the
// --auditor flags and the environment. Secrets come from files or the
// environment, never from the command line.
type AuditorConfig struct {
	// URL is the auditor's address (--auditor); empty means no auditor.
	URL string
	// Token, or else the content of TokenFile, is the bearer token.
	Token, TokenFile string
	// User and Password (or the content of PasswordFile) are basic auth.
	User, Password, PasswordFile string
	// CAFile is a PEM CA to trust for an https URL, besides the system's.
	CAFile string
}

// NewAuditor checks c and reads its files, reporting every problem at once.
func NewAuditor(c AuditorConfig) (*Auditor, error) {
	a := &Auditor{Base: strings.TrimSuffix(c.URL, "/"), Token: c.Token, User: c.User, Password: c.Password}
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--auditor %q: give the auditor's http:// or https:// address, e.g. http://127.0.0.1:8080 (its --http)", c.URL))
	} else if u.User != nil {
		errs = append(errs, errors.New("--auditor: the address carries a user or password, which the command line shows to anyone on the machine; give them with --auditor-user and --auditor-password-file"))
	}
	for _, f := range []struct {
		flag, path string
		secret     *string
	}{{"--auditor-token-file", c.TokenFile, &a.Token}, {"--auditor-password-file", c.PasswordFile, &a.Password}} {
		if f.path == "" {
			continue
		}
		v, err := events.ReadSecret(f.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.flag, err))
		}
		*f.secret = v
	}
	if (a.User == "") != (a.Password == "") {
		errs = append(errs, errors.New("--auditor-user and --auditor-password-file (or CUTOVER_HTTP_PASSWORD) go together"))
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		pool, _ := x509.SystemCertPool()
		if pool == nil {
			pool = x509.NewCertPool()
		}
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("--auditor-ca: %w", err))
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, fmt.Errorf("--auditor-ca %s: no PEM certificate in it", c.CAFile))
		}
		a.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

// get GETs path and decodes its JSON body into v.
func (a *Auditor) get(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.Base+path, nil)
	if err != nil {
		return fmt.Errorf("--auditor %q: %w", a.Base, err)
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	if a.User != "" {
		req.SetBasicAuth(a.User, a.Password)
	}
	client := a.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "certificate") {
			hint = " (give the CA that signed its certificate with --auditor-ca)"
		}
		return fmt.Errorf("ask the auditor at %s: %w%s", a.Base, err, hint)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read the auditor's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &eb)
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (give its token with --auditor-token-file or CUTOVER_HTTP_TOKEN, or its user with --auditor-user and --auditor-password-file)"
		}
		return fmt.Errorf("the auditor at %s answered %s: %s%s", a.Base, resp.Status, eb.Error, hint)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode the auditor's answer: %w", err)
	}
	return nil
}

// Upgrades reads every upgrade the auditor recorded, newest first.
func (a *Auditor) Upgrades(ctx context.Context) ([]auditor.UpgradeSummary, error) {
	var ups []auditor.UpgradeSummary
	if err := a.get(ctx, "/api/upgrades", &ups); err != nil {
		return nil, err
	}
	return ups, nil
}

// Resolve finds the upgrade arg names among those the auditor recorded:
// an id, a unique prefix of one, or a release name one upgrade has.
func (a *Auditor) Resolve(ctx context.Context, arg string) (string, error) {
	ups, err := a.Upgrades(ctx)
	if err != nil {
		return "", err
	}
	var list []*planner.Upgrade
	for _, u := range ups {
		list = append(list, &planner.Upgrade{ID: u.ID, Release: events.Release{Name: u.Release}, Phase: string(u.State)})
	}
	return Match(list, arg)
}

// Events reads an upgrade's events, oldest first.
func (a *Auditor) Events(ctx context.Context, id string) ([]events.Event, error) {
	var raws []json.RawMessage
	if err := a.get(ctx, "/api/upgrades/"+url.PathEscape(id)+"/events", &raws); err != nil {
		return nil, err
	}
	out := make([]events.Event, 0, len(raws))
	for _, r := range raws {
		var e events.Event
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, fmt.Errorf("decode an event from the auditor: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// History reads the events of the upgrade arg names, oldest first.
func (a *Auditor) History(ctx context.Context, arg string) ([]events.Event, error) {
	id, err := a.Resolve(ctx, arg)
	if err != nil {
		return nil, err
	}
	return a.Events(ctx, id)
}
