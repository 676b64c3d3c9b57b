package scenario

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/harness/testkit"
)

// TestDemoOpenStack runs make demo-openstack's scenario, briefly: v1 -> v2
// through expand, the roll with drain, migrate, online data migrations and
// contract under a write load through HAProxy, then v3's failing db-sync
// restored while v2 serves; it passes only with 0 failed requests and 0
// lost writes (DemoOpenStack's exit code).
func TestDemoOpenStack(t *testing.T) {
	server := os.Getenv("CUTOVER_TEST_MARIADB")
	if server == "" {
		t.Skip("demo-openstack test skipped: CUTOVER_TEST_MARIADB is unset; run make mariadb")
	}
	if _, err := exec.LookPath("haproxy"); err != nil {
		t.Skip("haproxy not installed: run scripts/install-haproxy.sh (make test does)")
	}
	if _, err := testkit.DockerAvailable(t.Context()); err != nil {
		t.Skipf("docker engine not reachable: %v", err)
	}
	var out bytes.Buffer
	err := DemoOpenStack(t.Context(), &out, OpenStackOptions{MariaDB: server, Rate: 30, MinLoad: 8 * time.Second})
	if err != nil || !strings.Contains(out.String(), "failed requests: 0   lost writes: 0") {
		t.Fatalf("demo-openstack: %v\n%s", err, out.String())
	}
}
