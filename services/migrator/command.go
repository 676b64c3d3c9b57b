package migrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// CommandRunner runs command migrations in one-off containers (the docker
// subpackage, on the Docker engine the migrator is given).
type CommandRunner interface {
	// Check makes sure the image is there (pulling it when needed) and that
	// the program the container would start exists in it. It returns an
	// error wrapping ErrCommandNotFound when it does not.
	Check(ctx context.Context, spec CommandSpec) error
	// Run starts a container from spec.Image, waits for it to exit or for
	// spec.Timeout (then kills it), and removes it. A container that ran
	// and exited, even non-zero or killed, is a nil error: the outcome says
	// how it ended.
	Run(ctx context.Context, spec CommandSpec) (CommandOutcome, error)
}

// ErrCommandNotFound is wrapped by CommandRunner.Check when the image lacks
// the program its container would start.
var ErrCommandNotFound = errors.New("command not found in the image")

// CommandSpec is one container to run.
type CommandSpec struct {
	// Name is the container's name (unique per run).
	Name string
	// Image is the image reference.
	Image string
	// Entrypoint replaces the image's ENTRYPOINT when set.
	Entrypoint []string
	// Command replaces the image's CMD.
	Command []string
	// Env is KEY=VALUE pairs added to the image's environment.
	Env []string
	// Mounts are host-path:container-path[:ro] binds.
	Mounts []string
	// Network is the Docker network mode or network name ("" for the
	// engine's default).
	Network string
	// Timeout bounds the run.
	Timeout time.Duration
	// Labels are put on the container (dev.cutover.migration=<request>).
	Labels map[string]string
	// LogLines is how many of the last output lines to keep.
	LogLines int
}

// CommandOutcome is how a container ended.
type CommandOutcome struct {
	// ExitCode is the container's exit code (-1 when killed at the timeout).
	ExitCode int
	// TimedOut reports that it was killed at the timeout.
	TimedOut bool
	// Log is its last output lines (stdout and stderr), not yet redacted.
	Log []string
}

// fingerprinter is a Database that can fingerprint its schema (tables,
// columns, indexes), so that a command migration without a version command
// still says what it changed.
type fingerprinter interface {
	Fingerprint(ctx context.Context) (string, error)
}

// Defaults of command migrations.
const (
	// DefaultCommandTimeout bounds one run of a migration command.
	DefaultCommandTimeout = 10 * time.Minute
	// MaxCommandRuns bounds the runs of a repeated command (online data
	// migrations): a command that keeps saying "more work" past it fails.
	MaxCommandRuns = 100
	// commandLogLines is how many output lines an event carries.
	commandLogLines = 20
)

// BootstrapEnv is the variable Kolla's images read to run their bootstrap
// (database migration) instead of the service.
const BootstrapEnv = "KOLLA_BOOTSTRAP"

// migrateCommand handles a migration request whose migration is a command
// run in a one-off container from the service's new image: check the
// command exists in the image (before any snapshot), read the schema
// version, snapshot, run (repeated while it exits 1 when req.Command.Repeat),
// and on failure restore the snapshot. The service's running containers are
// not touched: they keep serving from the old image throughout.
func (m *Migrator) migrateCommand(ctx context.Context, e events.Event, req events.MigrationRequested, log *slog.Logger,
	fail, failed func(events.MigrationFailed) error) error {
	database := redact(req.Database)
	untouched := "unchanged: the migrator did not touch the database"
	if m.cfg.Commands == nil {
		return fail(events.MigrationFailed{Error: "this migrator runs no command migrations: start it with Docker access (migrator --docker)", State: untouched})
	}
	spec := m.commandSpec(req, e.ID())
	secrets := secretsOf(req)
	result := func(o CommandOutcome, runs int) *events.CommandResult {
		return &events.CommandResult{ExitCode: o.ExitCode, TimedOut: o.TimedOut, Runs: runs, LogTail: redactLines(o.Log, secrets)}
	}
	if err := m.cfg.Commands.Check(ctx, spec); err != nil {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("command %s in image %s: %v", redactText(strings.Join(req.Command.Command, " "), secrets), req.Command.Image, err), State: untouched + " (nothing ran, no snapshot taken)"})
	}

	r, err := m.beginRun(ctx, req, "", database, e.ID(), log, fail)
	if r == nil {
		return err
	}
	defer r.release()
	db, from, dirty, started := r.db, r.from, r.dirty, r.started
	if dirty && !req.Recover {
		return fail(events.MigrationFailed{Error: fmt.Sprintf("database is dirty at version %d", from), Version: from,
			State: fmt.Sprintf("dirty at version %d, unchanged; send the request again with recover, or repair the database by hand", from)})
	}
	fromSchema, err := m.schemaVersion(ctx, db, req, spec, secrets)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: untouched + " (no snapshot taken)"})
	}

	snap, err := db.Snapshot(ctx)
	if err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: fmt.Sprintf("clean at version %d, unchanged (no migration runs without a verified snapshot)", from)})
	}
	if err := db.RecordRun(ctx, &Run{ID: e.ID(), Snapshot: snap.ID, From: from, Target: from, Started: snap.Time}); err != nil {
		return fail(events.MigrationFailed{Error: err.Error(), Version: from, State: fmt.Sprintf("clean at version %d, unchanged (no migration runs unrecorded; snapshot %s was taken)", from, snap.ID)})
	}
	log.Info("snapshot taken; running the migration command", "snapshot", snap.ID, "image", req.Command.Image, "phase", req.Phase, "schema", fromSchema)
	if err := m.publish(ctx, e, events.MigrationStarted{Database: database, FromVersion: from, SnapshotID: snap.ID}); err != nil {
		return err
	}

	// Shutdown does not stop a migration midway.
	runCtx := context.WithoutCancel(ctx)
	var out CommandOutcome
	runs := 0
	var cause error
	for {
		runs++
		out, err = m.cfg.Commands.Run(runCtx, spec)
		switch {
		case err != nil:
			cause = fmt.Errorf("run %s: %w", spec.Name, err)
		case out.TimedOut:
			cause = fmt.Errorf("the command did not finish within %v; it was killed", spec.Timeout)
		case out.ExitCode == 1 && req.Command.Repeat && runs < MaxCommandRuns:
			log.Info("the command has more work; running it again", "run", runs)
			continue
		case out.ExitCode == 1 && req.Command.Repeat:
			cause = fmt.Errorf("the command still reported more work (exit 1) after %d runs", runs)
		case out.ExitCode != 0:
			cause = fmt.Errorf("the command exited with %d", out.ExitCode)
		}
		break
	}
	if cause != nil {
		// As after a failed file: writes counted since the snapshot (the
		// service's, or the command's own) keep the database as it is
		// unless the request says restore_anyway.
		f := m.restoreAfter(runCtx, db, snap, cause, req.RestoreAnyway, nil, log)
		f.Error = redactText(f.Error, secrets)
		f.Command = result(out, runs)
		f.Command.FromSchema = fromSchema
		if f.Restore != nil && f.Restore.Restored && fromSchema != "" {
			// The version above is golang-migrate's, which commands do
			// not move: say the schema the service sees.
			f.State += "; schema " + fromSchema + " as before the command"
		}
		return failed(f)
	}
	toSchema, err := m.schemaVersion(runCtx, db, req, spec, secrets)
	if err != nil {
		log.Warn("read the schema version after the migration", "err", err)
	}
	to, _, _ := db.Version(runCtx)
	m.finishRun(runCtx, db, false, log)
	m.prune(runCtx, db, log)
	res := result(out, runs)
	res.FromSchema, res.ToSchema = fromSchema, toSchema
	return m.finish(ctx, e, events.MigrationCompleted{
		Database: database, FromVersion: from, ToVersion: to, SnapshotID: snap.ID,
		DurationMs: time.Since(started).Milliseconds(), Command: res,
	}, log)
}

// commandSpec builds the container of a request: the new image, the
// command, the service's env plus KOLLA_BOOTSTRAP, its mounts and network.
func (m *Migrator) commandSpec(req events.MigrationRequested, requestID string) CommandSpec {
	c := req.Command
	env := slices.Clone(c.Env)
	named := slices.ContainsFunc(env, func(kv string) bool { k, _, _ := strings.Cut(kv, "="); return k == BootstrapEnv })
	if !c.NoBootstrapEnv && !named {
		env = append(env, BootstrapEnv+"=")
	}
	timeout := DefaultCommandTimeout
	if c.TimeoutSeconds > 0 {
		timeout = time.Duration(c.TimeoutSeconds) * time.Second
	}
	phase := req.Phase
	if phase == "" {
		phase = PhaseAll
	}
	short := requestID
	if len(short) > 12 {
		short = short[len(short)-12:]
	}
	return CommandSpec{
		Name:  "cutover-migrate-" + phase + "-" + short,
		Image: c.Image, Entrypoint: c.Entrypoint, Command: c.Command, Env: env,
		Mounts: c.Mounts, Network: c.Network, Timeout: timeout, LogLines: commandLogLines,
		Labels: map[string]string{"dev.cutover.migration": requestID, "dev.cutover.service": req.Service},
	}
}

// schemaVersion reads the schema's version with the request's version
// command (run like the migration, its last output line), or else the
// database's schema fingerprint ("" when the driver has none).
func (m *Migrator) schemaVersion(ctx context.Context, db Database, req events.MigrationRequested, spec CommandSpec, secrets []string) (string, error) {
	if len(req.Command.VersionCommand) == 0 {
		f, ok := db.(fingerprinter)
		if !ok {
			return "", nil
		}
		fp, err := f.Fingerprint(ctx)
		if err != nil {
			return "", fmt.Errorf("fingerprint the schema: %w", err)
		}
		return fp, nil
	}
	spec.Name += "-version"
	spec.Command = req.Command.VersionCommand
	spec.LogLines = commandLogLines
	out, err := m.cfg.Commands.Run(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("read the schema version with %s: %w", strings.Join(spec.Command, " "), err)
	}
	if out.TimedOut || out.ExitCode != 0 {
		return "", fmt.Errorf("read the schema version with %s: exit %d (timed out %v): %s", strings.Join(spec.Command, " "),
			out.ExitCode, out.TimedOut, strings.Join(redactLines(out.Log, secrets), " | "))
	}
	for i := len(out.Log) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(out.Log[i]); s != "" {
			return redactText(s, secrets), nil
		}
	}
	return "", fmt.Errorf("read the schema version with %s: it printed nothing", strings.Join(spec.Command, " "))
}

// secretKey matches environment variable names whose values are secrets.
var secretKey = regexp.MustCompile(`(?i)(PASS|SECRET|TOKEN|KEY|CREDENTIAL)`)

// secretsOf returns the secret values of a request: the database URL's
// password and the values of secret-looking env keys.
func secretsOf(req events.MigrationRequested) []string {
	var out []string
	if u, err := url.Parse(req.Database); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			out = append(out, p)
		}
	}
	for _, kv := range req.Command.Env {
		k, v, _ := strings.Cut(kv, "=")
		if secretKey.MatchString(k) && len(v) >= 3 {
			out = append(out, v)
		}
	}
	return out
}

// secretPatterns catch secrets a tool prints that the request did not name:
// URL passwords and password=/token: style assignments.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(://[^:/@\s]+:)[^@\s]+@`),
	regexp.MustCompile(`(?i)((?:password|passwd|pwd|secret|token)\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)`),
}

// redactText replaces the secrets in s.
func redactText(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "xxxxx")
	}
	s = secretPatterns[0].ReplaceAllString(s, "${1}xxxxx@")
	return secretPatterns[1].ReplaceAllString(s, "${1}xxxxx")
}

func redactLines(lines, secrets []string) []string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if len(l) > 500 {
			l = l[:500] + "..."
		}
		out = append(out, redactText(l, secrets))
	}
	return out
}
