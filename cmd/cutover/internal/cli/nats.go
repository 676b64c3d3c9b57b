package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/stack"
	"github.com/cutover-dev/cutover/events"
)

// Identity is the CLI's identity in a generated authorization: operators
// request, control and roll back upgrades and read every event.
const Identity = "cli"

// DefaultDataDir is where cutover dev keeps its state, and where the CLI
// finds the credentials it generated.
const DefaultDataDir = ".cutover-data"

// NATS holds the flags of every command that talks to NATS.
type NATS struct {
	cfg *events.ClientConfig
}

// NATSFlags adds the NATS connection flags to cmd: --nats, --nats-creds,
// --nats-nkey, --nats-user, --nats-password-file, --nats-token-file,
// --nats-ca, --nats-cert, --nats-key (CUTOVER_NATS_* in the environment),
// the same set every service binary takes.
func NATSFlags(cmd *cobra.Command) *NATS {
	gofs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	o := &NATS{cfg: events.AddClientFlags(gofs, os.Getenv)}
	cmd.Flags().AddGoFlagSet(gofs)
	return o
}

// Connect opens the CLI's NATS connection. Without credentials given it uses
// the CLI identity `cutover dev` generated in its data directory
// ($CUTOVER_DATA, default .cutover-data), when that file exists.
func (o *NATS) Connect(ctx context.Context) (*nats.Conn, jetstream.JetStream, error) {
	c := *o.cfg
	if c.CredsFile == "" && c.NKeyFile == "" && c.User == "" && c.TokenFile == "" && c.Token == "" {
		c.NKeyFile = DevSeedFile(os.Getenv("CUTOVER_DATA"), Identity)
	}
	for _, w := range c.SecretFileWarnings() {
		fmt.Fprintln(os.Stderr, "cutover: warning:", w)
	}
	return events.Connect(ctx, c, "cutover-"+Identity)
}

// With connects, runs f on the connection's JetStream and closes it.
func (o *NATS) With(ctx context.Context, f func(context.Context, jetstream.JetStream) error) error {
	nc, js, err := o.Connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	return f(ctx, js)
}

// DevSeedFile returns the seed file cutover dev wrote for identity in its
// data directory (default .cutover-data), or "" when there is none.
func DevSeedFile(dataDir, identity string) string {
	if dataDir == "" {
		dataDir = DefaultDataDir
	}
	p := filepath.Join(dataDir, stack.CredsDir, identity+".nk")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
