package migrator

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
)

func TestRedactCommandOutput(t *testing.T) {
	req := events.MigrationRequested{Database: "mysql://keystone:db-pw-1@db:3306/keystone", Command: &events.MigrationCommand{
		Env: []string{"OS_PASSWORD=adm1n-pw", "KEYSTONE_TOKEN=tok-123", "DEBUG=1", "API_KEY=k"}}}
	secrets := secretsOf(req)
	for _, tc := range []struct{ in, gone string }{
		{"connecting to mysql://keystone:db-pw-1@db:3306/keystone", "db-pw-1"},
		{"auth with adm1n-pw failed", "adm1n-pw"},
		{"token tok-123 expired", "tok-123"},
		{"connection = mysql://nova:other-pw@db/nova", "other-pw"},
		{`password = "s p a c e"`, "s p a c e"},
		{"--os-password=xyz987 given", "xyz987"},
	} {
		if got := redactText(tc.in, secrets); strings.Contains(got, tc.gone) {
			t.Errorf("redactText(%q) = %q: %q is still there", tc.in, got, tc.gone)
		}
	}
	if got := redactText("DEBUG=1 applied step 6", secrets); got != "DEBUG=1 applied step 6" {
		t.Errorf("redactText changed a line without secrets: %q", got)
	}
}
