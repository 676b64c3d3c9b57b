package docker_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover-dev/cutover/services/node-updater/docker"
)

// TestConnectNoEngine: with no engine behind DOCKER_HOST, Connect fails with
// an error that names the host it tried, instead of returning a dead client.
func TestConnectNoEngine(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "no-such.sock")
	t.Setenv("DOCKER_HOST", host)
	cli, err := docker.Connect(t.Context(), 2*time.Second)
	if err == nil {
		cli.Close()
		t.Fatal("Connect succeeded with no engine listening")
	}
	if !strings.Contains(err.Error(), host) {
		t.Errorf("error %q does not name the host %s", err, host)
	}
}
