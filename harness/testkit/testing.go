package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// DockerOrSkip returns a client of the Docker engine, closed at the end of
// the test, and skips the test when the engine is not reachable.
func DockerOrSkip(t testing.TB) *client.Client {
	t.Helper()
	cli, err := DockerAvailable(t.Context())
	if err != nil {
		t.Skipf("docker engine not reachable, skipping: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// StartTestRegistry is StartRegistry for a test: a failed start fails the
// test, and the registry closes at its end (an error closing it fails it too).
func StartTestRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, err := StartRegistry(t.Context())
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := reg.Close(ctx); err != nil {
			t.Errorf("close registry: %v", err)
		}
	})
	return reg
}
