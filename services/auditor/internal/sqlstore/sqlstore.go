// Package sqlstore is the auditor's history on a SQL database: the one set
// of queries and rules both SQL stores (sqlite/, postgres/) follow, written
// once, with a Dialect for what their SQL spells differently. storetest
// runs the same conformance suite against both.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/services/auditor"
	"github.com/cutover-dev/cutover/services/auditor/internal/rows"
)

// Dialect is what a database spells its own way.
type Dialect struct {
	// Table is the events table.
	Table string
	// Param returns the placeholder of the n-th argument, from 1.
	Param func(n int) string
	// JSON returns the text at path (keys) inside the JSON text column col.
	JSON func(col string, path ...string) string
	// RowID is the cheapest key of a row to delete by ("rowid" in SQLite).
	RowID string
	// Collate follows an id in ORDER BY so that ids compare bytewise in
	// every store, and ties in time break the same way ("" when they do).
	Collate string
}

// History implements auditor.Store, auditor.History and auditor.Pruner
// on a database. A
// store embeds it, so its methods are the store's.
type History struct {
	Dialect
	// Name names the database in errors: a file, or a URL without password.
	Name string
	// Writer runs Append; Reader runs the queries (the same pool, or
	// read-only connections).
	Writer, Reader *sql.DB
}

// query builds a statement's arguments as its placeholders are written.
type query struct {
	d    Dialect
	args []any
}

// arg adds v and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return q.d.Param(len(q.args))
}

// in adds vs and returns their placeholders, comma-separated.
func (q *query) in(vs []string) string {
	ph := make([]string, len(vs))
	for i, v := range vs {
		ph[i] = q.arg(v)
	}
	return strings.Join(ph, ",")
}

// Append stores r unless a record with its id exists, and reports whether it
// inserted it.
func (h *History) Append(ctx context.Context, r auditor.Record) (bool, error) {
	q := &query{d: h.Dialect}
	values := []string{q.arg(r.ID), q.arg(r.Type), q.arg(r.Source), q.arg(r.Subject), q.arg(r.UpgradeID), q.arg(r.NodeID), q.arg(r.CausationID),
		q.arg(r.Time.UnixNano()), q.arg(r.StoredAt.UnixNano()), q.arg(string(r.Event)), q.arg(int64(r.Sequence))}
	res, err := h.Writer.ExecContext(ctx, `
		INSERT INTO `+h.Table+` (id, type, source, subject, upgradeid, nodeid, causationid, time, stored_at, event, seq)
		VALUES (`+strings.Join(values, ", ")+`)
		ON CONFLICT (id) DO NOTHING`, q.args...)
	if err != nil {
		return false, fmt.Errorf("append event %s to %s: %w", r.ID, h.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("append event %s to %s: %w", r.ID, h.Name, err)
	}
	return n == 1, nil
}

// PruneSignals deletes at most limit heartbeats and health signals older
// than before that carry no upgrade id (auditor.SignalTypes), and returns
// how many it deleted.
func (h *History) PruneSignals(ctx context.Context, before time.Time, limit int) (int, error) {
	q := &query{d: h.Dialect}
	res, err := h.Writer.ExecContext(ctx, `
		DELETE FROM `+h.Table+` WHERE `+h.RowID+` IN (
			SELECT `+h.RowID+` FROM `+h.Table+` WHERE type IN (`+q.in(auditor.SignalTypes())+`)
			AND time < `+q.arg(before.UnixNano())+` AND upgradeid = '' LIMIT `+q.arg(limit)+`)`, q.args...)
	if err != nil {
		return 0, fmt.Errorf("prune signals in %s: %w", h.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune signals in %s: %w", h.Name, err)
	}
	return int(n), nil
}

// Count returns the number of stored events.
func (h *History) Count(ctx context.Context) (int, error) {
	var n int
	if err := h.Reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+h.Table).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events in %s: %w", h.Name, err)
	}
	return n, nil
}

// Events returns the records of one upgrade in stream order (then time and
// id, for rows stored before the sequence was).
func (h *History) Events(ctx context.Context, upgradeID string) ([]auditor.Record, error) {
	q := &query{d: h.Dialect}
	rs, err := h.Reader.QueryContext(ctx, `
		SELECT id, type, source, subject, upgradeid, nodeid, causationid, time, stored_at, event, seq
		FROM `+h.Table+` WHERE upgradeid = `+q.arg(upgradeID)+` ORDER BY seq, time, id`+h.Collate, q.args...)
	if err != nil {
		return nil, fmt.Errorf("read events of upgrade %s from %s: %w", upgradeID, h.Name, err)
	}
	out, err := rows.Records(rs)
	if err != nil {
		return nil, fmt.Errorf("read events of upgrade %s from %s: %w", upgradeID, h.Name, err)
	}
	return out, nil
}

// Upgrades returns one summary per upgrade id, the most recently started first.
func (h *History) Upgrades(ctx context.Context) ([]auditor.UpgradeSummary, error) {
	out, err := h.summaries(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list upgrades in %s: %w", h.Name, err)
	}
	return out, nil
}

// Upgrade returns the summary of one upgrade, or an error wrapping
// auditor.ErrUpgradeNotFound.
func (h *History) Upgrade(ctx context.Context, id string) (auditor.UpgradeSummary, error) {
	if id == "" {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade: empty id: %w", auditor.ErrUpgradeNotFound)
	}
	out, err := h.summaries(ctx, id)
	if err != nil {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade %s in %s: %w", id, h.Name, err)
	}
	if len(out) == 0 {
		return auditor.UpgradeSummary{}, fmt.Errorf("read upgrade %s in %s: %w", id, h.Name, auditor.ErrUpgradeNotFound)
	}
	return out[0], nil
}

// summaries computes upgrade summaries, of every upgrade when id is "".
// The release name comes from the first upgrade.requested event, else the
// newest plan; the state from the newest lifecycle event. The lifecycle
// subqueries share one ORDER BY so both pick the same event.
func (h *History) summaries(ctx context.Context, id string) ([]auditor.UpgradeSummary, error) {
	q := &query{d: h.Dialect}
	lifecycle := auditor.LifecycleTypes()
	c, t := h.Collate, h.Table
	newest := `ORDER BY l.seq DESC, l.time DESC, l.id` + c + ` DESC LIMIT 1`
	stmt := `
		SELECT g.upgradeid, g.n, g.first, g.last,
			COALESCE(
				(SELECT ` + h.JSON("r.event", "data", "release", "name") + ` FROM ` + t + ` r
				 WHERE r.upgradeid = g.upgradeid AND r.type = ` + q.arg(events.TypeUpgradeRequested) + ` ORDER BY r.seq, r.time, r.id` + c + ` LIMIT 1),
				(SELECT ` + h.JSON("p.event", "data", "release") + ` FROM ` + t + ` p
				 WHERE p.upgradeid = g.upgradeid AND p.type = ` + q.arg(events.TypeUpgradePlanned) + ` ORDER BY p.seq DESC, p.time DESC, p.id` + c + ` DESC LIMIT 1),
				''),
			COALESCE(
				(SELECT l.type FROM ` + t + ` l
				 WHERE l.upgradeid = g.upgradeid AND l.type IN (` + q.in(lifecycle) + `) ` + newest + `),
				''),
			COALESCE(
				(SELECT ` + h.JSON("l.event", "data") + ` FROM ` + t + ` l
				 WHERE l.upgradeid = g.upgradeid AND l.type IN (` + q.in(lifecycle) + `) ` + newest + `),
				'')
		FROM (
			SELECT upgradeid, COUNT(*) AS n, MIN(time) AS first, MAX(time) AS last
			FROM ` + t + ` WHERE upgradeid <> '' AND (` + q.arg(id) + ` = '' OR upgradeid = ` + q.arg(id) + `)
			GROUP BY upgradeid
		) g
		ORDER BY g.first DESC, g.upgradeid` + c
	rs, err := h.Reader.QueryContext(ctx, stmt, q.args...)
	if err != nil {
		return nil, err
	}
	return rows.Summaries(rs)
}

// MigrateUp brings the schema of migrations (an embedded migrations/
// directory) to its latest version through drv, golang-migrate's driver
// named driverName on db, and closes them. name names the database in
// errors; dirtyFix says how to repair a schema a failed migration left
// dirty.
func MigrateUp(db *sql.DB, drv database.Driver, migrations fs.FS, driverName, name, dirtyFix string) error {
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("read embedded audit schema: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, driverName, drv)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("prepare audit store %s schema: %w", name, err)
	}
	err = m.Up()
	srcErr, dbErr := m.Close()
	var dirty migrate.ErrDirty
	switch {
	case errors.As(err, &dirty):
		return fmt.Errorf("migrate audit store %s schema: version %d is dirty; %s: %w", name, dirty.Version, dirtyFix, err)
	case err != nil && !errors.Is(err, migrate.ErrNoChange):
		return fmt.Errorf("migrate audit store %s schema: %w", name, err)
	}
	if err := errors.Join(srcErr, dbErr); err != nil {
		return fmt.Errorf("close audit store %s after schema migration: %w", name, err)
	}
	return nil
}
