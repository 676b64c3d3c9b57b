// Package apply runs golang-migrate one file at a time for the drivers
// (sqlite/, postgres/, mysql/), recording each committed file in our own
// ledger, so a failure names its file and the ledger never runs ahead of
// the database. Run.Migrate is the walk the drivers share.
package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
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

// Version reads golang-migrate's version row from table, which the caller
// has found to exist. No row, or version -1 (golang-migrate's "none"), is
// version 0.
func Version(ctx context.Context, db *sql.DB, table string) (uint, bool, error) {
	v, dirty, err := State(ctx, db, table)
	if v < 0 {
		return 0, dirty, err
	}
	return uint(v), dirty, err
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

// Run is what a driver tells Migrate about its database: the parts of a
// migration run that differ between databases. Migrate is the walk the
// drivers share.
type Run struct {
	// Key names the database in errors; Source is the migrations directory.
	Key, Source string
	// Migrations lists the source's migrations.
	Migrations func(ctx context.Context) ([]migrator.Migration, error)
	// State reads the database's version: none when nothing was applied.
	State func(ctx context.Context) (v uint, dirty, none bool, err error)
	// Conn opens a connection pool of its own: the ledger has one, and
	// golang-migrate owns another.
	Conn func(ctx context.Context) (*sql.DB, error)
	// Ledger adapts the ledger's connection to the database's
	// placeholders when they are not $n (nil: as it is).
	Ledger func(db ledger.Execer) ledger.Execer
	// Driver is golang-migrate's driver on db, named Name.
	Driver func(db *sql.DB) (database.Driver, error)
	Name   string
	// StepError describes a failed file, and whether the database undid it.
	StepError func(step migrator.Migration, file string, err error) *migrator.StepError
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
	from, dirty, none, err := r.State(ctx)
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
	var lx ledger.Execer = led
	if r.Ledger != nil {
		lx = r.Ledger(led)
	}
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
