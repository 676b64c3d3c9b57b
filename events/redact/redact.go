// Package redact hides secrets in text that leaves a process: log lines of
// a failed container published in dev.cutover.container.reverted, a
// command's output. What it hides:
//
//   - the values of environment variables whose name looks secret (contains
//     PASS, SECRET, TOKEN, KEY, CRED or AUTH), when at least 4 characters;
//   - the value after password, passwd, pwd, secret, token, api_key, apikey,
//     access_key, secret_key, private_key, credential(s) or auth followed by
//     = or : (also quoted, as in JSON);
//   - a URL's password (scheme://user:PASSWORD@host) and a bearer token
//     (Authorization: Bearer TOKEN).
//
// Each becomes REDACTED. It cannot know a secret that matches none of
// these, so it is a safety net, not a licence to log secrets.
package redact

import (
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every secret.
const Mask = "REDACTED"

// minSecret is the shortest env value hidden: shorter ones ("1", "yes")
// would blank ordinary words out of every line.
const minSecret = 4

var (
	secretName = regexp.MustCompile(`(?i)(PASS|SECRET|TOKEN|KEY|CRED|AUTH)`)
	assignment = regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?|auth)["']?\s*[:=]\s*["']?)([^\s"'&;,)\]}]+)`)
	urlPass    = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)@`)
	bearer     = regexp.MustCompile(`(?i)(bearer\s+)([A-Za-z0-9._~+/=-]+)`)
)

// EnvSecrets returns the values of KEY=VALUE pairs whose key looks secret.
func EnvSecrets(env []string) []string {
	var out []string
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok && len(v) >= minSecret && secretName.MatchString(k) {
			out = append(out, v)
		}
	}
	return out
}

// Lines returns a copy of lines with every known secret value and every
// secret-looking pattern replaced by REDACTED.
func Lines(lines []string, known []string) []string {
	known = slices.Clone(known)
	// Longest first, so a secret containing another is hidden whole.
	slices.SortFunc(known, func(a, b string) int { return len(b) - len(a) })
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = Line(l, known)
	}
	return out
}

// Line is Lines for one line.
func Line(l string, known []string) string {
	for _, k := range known {
		if len(k) >= minSecret {
			l = strings.ReplaceAll(l, k, Mask)
		}
	}
	l = urlPass.ReplaceAllString(l, "${1}"+Mask+"@")
	l = bearer.ReplaceAllString(l, "${1}"+Mask)
	l = assignment.ReplaceAllStringFunc(l, func(m string) string {
		sub := assignment.FindStringSubmatch(m)
		if sub[2] == Mask {
			return m
		}
		return sub[1] + Mask
	})
	return l
}
