package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/client"
)

// Connect opens a client to the engine the environment names (DOCKER_HOST
// and friends, else the local socket), negotiates the API version and pings
// it, giving up after timeout. The caller owns the client and closes it.
func Connect(ctx context.Context, timeout time.Duration) (*client.Client, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("create docker client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return nil, errors.Join(
			fmt.Errorf("ping docker engine at %s: %w (is dockerd running, and may this user use its socket?)", cli.DaemonHost(), err),
			cli.Close())
	}
	return cli, nil
}
