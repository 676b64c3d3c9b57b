// Package apply runs golang-migrate one file at a time for the drivers
// (sqlite/, postgres/, mysql/), recording each committed file in our own
// ledger, so a failure names its file and the ledger never runs ahead of
// the database. Run.Migrate is the walk the drivers share; Restored, the
// check after a restore.
package apply

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/file"

	"github.com/cutover-dev/cutover/services/migrator"
	"github.com/cutover-dev/cutover/services/migrator/ledger"
)

// Stepper runs golang-migrate steps; *migrate.Migrate has it.
type Stepper interface {
	Steps(n int) error
}

// Steps applies steps in order, up or down, one file per golang-migrate step.
// A failed file is described by fail (the driver knows whether its database
// undid it). key names the database in errors.
func Steps(ctx context.Context, m Stepper, led ledger.Execer, steps []migrator.Migration, up bool, key string,
	fail func(step migrator.Migration, file string, err error) *migrator.StepError) error {
	n := 1
	if !up {
		n = -1
	}
	for _, step := range steps {
		name := step.Up
		if !up {
			name = step.Down
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("migrate %s: stopped before %s, clean at the version before it: %w", key, name, err)
		}
		if err := m.Steps(n); err != nil {
			return fail(step, name, err)
		}
		// The step committed: a failure to record it leaves the ledger one
		// step behind, which the next run reports rather than hides.
		var err error
		if up {
			err = ledger.Record(context.WithoutCancel(ctx), led, step)
		} else {
			err = ledger.Remove(context.WithoutCancel(ctx), led, step.Version)
		}
		if err != nil {
			return fmt.Errorf("migrate %s: %s applied, but: %w", key, name, err)
		}
	}
	return nil
}

// SQLError returns the database's own error out of golang-migrate's wrapper,
// which also carries the whole migration text.
func SQLError(err error) error {
	var dbErr *database.Error
	if errors.As(err, &dbErr) && dbErr.OrigErr != nil {
		return dbErr.OrigErr
	}
	return err
}

// State reads golang-migrate's version row from table, which the caller has
// found to exist, as golang-migrate sees it: -1 when nothing was applied (no
// row, or version -1), so that a set numbered from 0 tells "version 0
// applied" from "nothing applied".
func State(ctx context.Context, db *sql.DB, table string) (int64, bool, error) {
	var v int64
	var dirty bool
	err := db.QueryRowContext(ctx, `SELECT version, dirty FROM `+table+` LIMIT 1`).Scan(&v, &dirty)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, false, nil
	}
	if err != nil {
		return -1, false, err
	}
	if v < 0 {
		return -1, dirty, nil
	}
	return v, dirty, nil
}

// Plan lists the steps that take a database from version from (none: nothing
// applied yet, which a set numbered from 0 needs to tell from version 0) to
// target, in the order they run: up, every migration after from up to
// target, as golang-migrate steps over the gaps between versions; down, the
// migrations above target down to from, newest first, each with a down file.
func Plan(migs []migrator.Migration, from uint, none bool, target uint, up bool) ([]migrator.Migration, error) {
	var steps []migrator.Migration
	for _, mg := range migs {
		if up && (mg.Version > from || (none && mg.Version == from)) && mg.Version <= target {
			steps = append(steps, mg)
		}
		if !up && mg.Version > target && mg.Version <= from && !none {
			if mg.Down == "" {
				return nil, fmt.Errorf("down to %d: migration %s has no down file", target, mg.Up)
			}
			steps = append([]migrator.Migration{mg}, steps...) // newest first
		}
	}
	return steps, nil
}

// Options takes golang-migrate's x- options (e.g. x-multi-statement=true)
// out of a database location and returns the location without them. Only
// the options in known are accepted: another x- option is an error naming
// the accepted ones. A location without a query, or whose query holds no
// x- option, is returned as it is.
func Options(location string, known ...string) (string, map[string]string, error) {
	base, query, ok := strings.Cut(location, "?")
	if !ok {
		return location, nil, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return location, nil, nil
	}
	opts := map[string]string{}
	for k := range vals {
		if !strings.HasPrefix(k, "x-") {
			continue
		}
		if !slices.Contains(known, k) {
			return "", nil, fmt.Errorf("option %s is not one the migrator honours for this driver; use %s", k, strings.Join(known, ", "))
		}
		opts[k] = vals.Get(k)
		vals.Del(k)
	}
	if len(opts) == 0 {
		return location, nil, nil
	}
	if rest := vals.Encode(); rest != "" {
		return base + "?" + rest, opts, nil
	}
	return base, opts, nil
}

// BoolOption reads a boolean x- option ("" is false).
func BoolOption(opts map[string]string, key string) (bool, error) {
	v, ok := opts[key]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("option %s=%q: want true or false", key, v)
	}
	return b, nil
}

// Flag takes the boolean x- option key, the one option the driver honours,
// out of location (Options, BoolOption) and returns location without it.
func Flag(location, key string) (string, bool, error) {
	location, opts, err := Options(location, key)
	if err != nil {
		return "", false, err
	}
	on, err := BoolOption(opts, key)
	return location, on, err
}

// SourceDir returns the absolute path of the migration source directory
// source ("" for none), which must be a readable directory.
func SourceDir(source string) (string, error) {
	if source == "" {
		return "", nil
	}
	abs, err := filepath.Abs(source)
	if err != nil {
		return "", fmt.Errorf("open migration source %q: %w", source, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("open migration source %s: not a readable directory (%v); name the directory holding NNNN_title.up.sql files", abs, err)
	}
	return abs, nil
}

// Schema is how a driver finds golang-migrate's version table and the
// ledger in its database.
type Schema struct {
	// Exists reports whether table exists in the database db is connected to.
	Exists func(ctx context.Context, db *sql.DB, table string) (bool, error)
	// VersionTable is golang-migrate's version table, as Exists takes it;
	// Quoted, as a query names it ("" = VersionTable).
	VersionTable, Quoted string
	// Ledger adapts a connection to the database's placeholders when they
	// are not $n, for the ledger's queries (nil: as it is).
	Ledger func(db ledger.Execer) ledger.Execer
	// CreateVersionTable, when set, creates the version table if it is
	// missing before Force writes it.
	CreateVersionTable string
}

func (s Schema) ledger(db ledger.Execer) ledger.Execer {
	if s.Ledger == nil {
		return db
	}
	return s.Ledger(db)
}

// state reads golang-migrate's version on db as golang-migrate sees it: -1
// when nothing was applied (no table, no row, or version -1).
func (s Schema) state(ctx context.Context, db *sql.DB) (int64, bool, error) {
	ok, err := s.Exists(ctx, db, s.VersionTable)
	if err != nil || !ok {
		return -1, false, err
	}
	return State(ctx, db, cmp.Or(s.Quoted, s.VersionTable))
}

// ReadVersion reads golang-migrate's version on db. A missing table or
// row, or version -1 (golang-migrate's "none"), is version 0.
func (s Schema) ReadVersion(ctx context.Context, db *sql.DB) (uint, bool, error) {
	v, dirty, err := s.state(ctx, db)
	if v < 0 {
		return 0, dirty, err
	}
	return uint(v), dirty, err
}

// Run is what a driver tells Migrate, and the queries around it, about its
// database: the parts of a migration run that differ between databases.
// Its methods are the walk the drivers share.
type Run struct {
	Schema
	// Key names the database in errors; Source is the migrations directory.
	Key, Source string
	// Conn opens a connection pool of its own: the ledger has one, and
	// golang-migrate owns another.
	Conn func(ctx context.Context) (*sql.DB, error)
	// Driver is golang-migrate's driver on db, named Name.
	Driver func(db *sql.DB) (database.Driver, error)
	Name   string
	// StepError describes a failed file, and whether the database undid it.
	StepError func(step migrator.Migration, file string, err error) *migrator.StepError
}

// Migrations lists the source directory's migrations by ascending version
// (migrator.ReadSource).
func (r Run) Migrations(ctx context.Context) ([]migrator.Migration, error) {
	if r.Source == "" {
		return nil, fmt.Errorf("list migrations of %s: no migration source was given", r.Key)
	}
	return migrator.ReadSource(r.Source)
}

// Version reads the database's version (Schema.ReadVersion) on a
// connection of its own.
func (r Run) Version(ctx context.Context) (uint, bool, error) {
	db, err := r.Conn(ctx)
	if err != nil {
		return 0, false, err
	}
	defer db.Close()
	v, dirty, err := r.ReadVersion(ctx, db)
	if err != nil {
		return 0, false, fmt.Errorf("read migration version of %s: %w", r.Key, err)
	}
	return v, dirty, nil
}

// state reads the version as golang-migrate sees it: none reports that
// nothing was applied (version 0 then), which a set numbered from 0 needs.
func (r Run) state(ctx context.Context) (v uint, dirty, none bool, err error) {
	db, err := r.Conn(ctx)
	if err != nil {
		return 0, false, false, err
	}
	defer db.Close()
	sv, dirty, err := r.Schema.state(ctx, db)
	if err != nil {
		return 0, false, false, fmt.Errorf("read migration version of %s: %w", r.Key, err)
	}
	if sv < 0 {
		return 0, dirty, true, nil
	}
	return uint(sv), dirty, false, nil
}

// Applied returns the ledger of applied files (package ledger).
func (r Run) Applied(ctx context.Context) ([]migrator.Applied, error) {
	db, err := r.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	exists, err := r.Exists(ctx, db, ledger.Table)
	if err != nil {
		return nil, fmt.Errorf("read ledger of %s: %w", r.Key, err)
	}
	out, err := ledger.Read(ctx, r.ledger(db), exists)
	if err != nil {
		return nil, fmt.Errorf("read ledger of %s: %w", r.Key, err)
	}
	return out, nil
}

// Force records version as the clean current version, without running
// anything: it rewrites golang-migrate's version table as golang-migrate
// does, one row, none for version 0 unless the set has a version 0.
func (r Run) Force(ctx context.Context, version uint) error {
	db, err := r.Conn(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	zero := version == 0 && ledger.Has(ctx, r.ledger(db), 0) // outside the transaction: a failed query aborts it in PostgreSQL
	table := cmp.Or(r.Quoted, r.VersionTable)
	err = func() error {
		if r.CreateVersionTable != "" {
			if _, err := db.ExecContext(ctx, r.CreateVersionTable); err != nil {
				return err
			}
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table); err != nil {
			return err
		}
		if version > 0 || zero {
			if _, err := r.ledger(tx).ExecContext(ctx, `INSERT INTO `+table+` (version, dirty) VALUES ($1, false)`, int64(version)); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("force version %d on %s: %w", version, r.Key, err)
	}
	return nil
}

// RecordRun records run in the ledger (nil: the last run ended clean).
func (r Run) RecordRun(ctx context.Context, run *migrator.Run) error {
	db, err := r.Conn(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if run != nil {
		err = ledger.StartRun(ctx, r.ledger(db), *run)
	} else {
		var exists bool
		if exists, err = r.Exists(ctx, db, ledger.RunsTable); err == nil {
			err = ledger.EndRun(ctx, r.ledger(db), exists)
		}
	}
	if err != nil {
		return fmt.Errorf("ledger of %s: %w", r.Key, err)
	}
	return nil
}

// LastRun returns the run recorded and not ended, nil when none.
func (r Run) LastRun(ctx context.Context) (*migrator.Run, error) {
	db, err := r.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	exists, err := r.Exists(ctx, db, ledger.RunsTable)
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", r.Key, err)
	}
	out, err := ledger.LastRun(ctx, r.ledger(db), exists)
	if err != nil {
		return nil, fmt.Errorf("ledger of %s: %w", r.Key, err)
	}
	return out, nil
}

// Migrate takes the database from its version to target, one file at a
// time (see Steps), so that a failure names its file. A dirty database is
// refused; the ledger is created first, and on the way up it adopts the
// versions applied before the migrator kept one.
func (r Run) Migrate(ctx context.Context, target uint, up bool) error {
	dir := "down"
	if up {
		dir = "up"
	}
	migs, err := r.Migrations(ctx)
	if err != nil {
		return err
	}
	from, dirty, none, err := r.state(ctx)
	if err != nil {
		return err
	}
	if dirty {
		return fmt.Errorf("migrate %s %s: the database is dirty at version %d", r.Key, dir, from)
	}
	steps, err := Plan(migs, from, none, target, up)
	if err != nil {
		return fmt.Errorf("migrate %s %w", r.Key, err)
	}
	if len(steps) == 0 {
		return nil
	}
	// The ledger has its own connection: golang-migrate owns db.
	led, err := r.Conn(ctx)
	if err != nil {
		return err
	}
	defer led.Close()
	lx := r.ledger(led)
	if err := ledger.Ensure(ctx, led); err != nil {
		return fmt.Errorf("migrate %s: %w", r.Key, err)
	}
	if up {
		if err := ledger.Adopt(ctx, lx, migs, from); err != nil {
			return fmt.Errorf("migrate %s: %w", r.Key, err)
		}
	}

	db, err := r.Conn(ctx)
	if err != nil {
		return err
	}
	drv, err := r.Driver(db)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("prepare migrations of %s: %w", r.Key, err)
	}
	src, err := (&file.File{}).Open((&url.URL{Scheme: "file", Path: filepath.ToSlash(r.Source)}).String())
	if err != nil {
		_ = drv.Close()
		return fmt.Errorf("open migration source %s: %w", r.Source, err)
	}
	m, err := migrate.NewWithInstance("file", src, r.Name, drv)
	if err != nil {
		_ = drv.Close()
		_ = src.Close()
		return fmt.Errorf("prepare migrations of %s: %w", r.Key, err)
	}
	defer func() {
		m.Close()
		_ = db.Close() // a no-op where golang-migrate closed it with m
	}()
	return Steps(ctx, m, lx, steps, up, r.Key, r.StepError)
}

// Methods answers the methods of migrator.Database that are the same walk
// for every driver, each on a fresh Run from the driver: a driver's Database
// embeds it (Bind) and declares only the methods its database does
// differently (MySQL's Up and Down take a server lock first; RecordRun
// also writes the run's start for package runmarks).
type Methods struct{ run func() Run }

// Bind returns the Methods that describe each call with run.
func Bind(run func() Run) Methods { return Methods{run: run} }

// Version reads golang-migrate's version of the database.
func (m Methods) Version(ctx context.Context) (uint, bool, error) { return m.run().Version(ctx) }

// Migrations lists the source directory's migrations by ascending version
// (migrator.ReadSource).
func (m Methods) Migrations(ctx context.Context) ([]migrator.Migration, error) {
	return m.run().Migrations(ctx)
}

// Applied returns the ledger of applied files (package ledger).
func (m Methods) Applied(ctx context.Context) ([]migrator.Applied, error) {
	return m.run().Applied(ctx)
}

// Up applies the up migrations after the current version until target.
func (m Methods) Up(ctx context.Context, target uint) error {
	return m.run().Migrate(ctx, target, true)
}

// Down applies the down migrations from the current version until target.
func (m Methods) Down(ctx context.Context, target uint) error {
	return m.run().Migrate(ctx, target, false)
}

// Force records version as the clean current version, without running
// anything (Run.Force).
func (m Methods) Force(ctx context.Context, version uint) error {
	return m.run().Force(ctx, version)
}

// RecordRun records run in the ledger (nil: the last run ended clean).
func (m Methods) RecordRun(ctx context.Context, run *migrator.Run) error {
	return m.run().RecordRun(ctx, run)
}

// LastRun returns the run recorded and not ended, nil when none.
func (m Methods) LastRun(ctx context.Context) (*migrator.Run, error) { return m.run().LastRun(ctx) }

// Restored checks that a database just restored from snapshot id reads the
// snapshot's version (version reads it; key names the database), and
// returns snap when it does.
func Restored(ctx context.Context, version func(context.Context) (uint, bool, error), key, id string, snap migrator.Snapshot) (migrator.Snapshot, error) {
	v, dirty, err := version(ctx)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("check %s restored from snapshot %s: %w", key, id, err)
	}
	if v != snap.Version || dirty != snap.Dirty {
		return migrator.Snapshot{}, fmt.Errorf("check %s restored from snapshot %s: version %d (dirty %v), want the snapshot's %d (dirty %v)",
			key, id, v, dirty, snap.Version, snap.Dirty)
	}
	return snap, nil
}
