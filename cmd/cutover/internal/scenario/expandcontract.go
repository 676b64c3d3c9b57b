package scenario

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/client"

	"github.com/cutover-dev/cutover/cmd/cutover/internal/render"
	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/harness/loadgen"
	"github.com/cutover-dev/cutover/harness/testkit"
	"github.com/cutover-dev/cutover/inventory"
	migsqlite "github.com/cutover-dev/cutover/services/migrator/sqlite"
)

// The expand/contract scenario: the zero-downtime scenario's three replicas
// of the demo app behind HAProxy, in their database mode, all reading and
// writing one SQLite file in a host directory bind-mounted into each
// container (one kernel, so SQLite's locks hold across them). The release
// moves the service from v1 to v2 and its schema from version 1 to 3: the
// planner has the in-process migrator run the expand migration (0002, a
// nullable display_name v1 ignores) before the first wave, rolls the
// replicas one at a time with drain while v1 and v2 serve side by side,
// and has it run the contract migration (0003, a backfill of display_name
// for v1's rows) only once every replica runs v2. A write-and-verify load
// runs through HAProxy the whole time: each request inserts an item and
// reads it back, usually from another replica, so v1 reads what v2 wrote
// and the other way round.

const (
	// ecDBDir is where the database directory is mounted in the containers.
	ecDBDir = "/db"
	// ecDBFile is the database's file name.
	ecDBFile = "app.db"
	// ecFromVersion is the schema the v1 replicas start on; ecToVersion
	// the release's.
	ecFromVersion, ecToVersion = 1, 3
)

// ecVersions are the images the scenario rolls between: v1 reads and
// writes schema generation 1, v2 generation 2.
var ecVersions = []imageVersion{
	{tag: "v1", env: []string{"DEMO_DB_SCHEMA=1"}, note: ", schema generation 1"},
	{tag: "v2", env: []string{"DEMO_DB_SCHEMA=2"}, note: ", schema generation 2"},
}

// ecMigrations are the service's migrations: the initial table (applied
// before the replicas start), the expand and the contract.
var ecMigrations = map[string]string{
	"0001_items.expand.up.sql":   "CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, written_by TEXT NOT NULL);",
	"0001_items.expand.down.sql": "DROP TABLE items;",
	// Expand: a nullable column v1's inserts leave empty.
	"0002_display_name.expand.up.sql":   "ALTER TABLE items ADD COLUMN display_name TEXT;",
	"0002_display_name.expand.down.sql": "ALTER TABLE items DROP COLUMN display_name;",
	// Contract: once no v1 writes any more, fill in what v1 left empty.
	"0003_backfill_display_name.contract.up.sql":   "UPDATE items SET display_name = name WHERE display_name IS NULL;\nCREATE INDEX items_written_by ON items (written_by);",
	"0003_backfill_display_name.contract.down.sql": "DROP INDEX items_written_by;",
}

// ecConfig describes one run of the expand/contract scenario: V1 speaks
// schema generation 1, V2 generation 2 (DEMO_DB_SCHEMA in the image); Rate
// is in writes per second, each two HTTP requests; WorkDir also holds the
// database and the migrations.
type ecConfig struct {
	runConfig
}

// ecResult is what one run measured.
type ecResult struct {
	Load       loadgen.Result
	UpgradeID  string
	UpgradeErr error
	// Order is the upgrade's events of interest in stream order: one
	// ecStep per migration request and completion and per container
	// drained or replaced.
	Order []ecStep
	// Rows are the items table's rows after the run, by id.
	Rows map[string]ecRow
	// Version and Dirty are the schema version golang-migrate recorded
	// after the run.
	Version int
	Dirty   bool
	// Images maps each container to the image version it runs afterwards.
	Images map[string]string
}

// ecStep is one event of interest.
type ecStep struct {
	Type string
	// Phase is the migration phase of a migration request; Version the
	// version a migration reached; Container the container of a container
	// event.
	Phase     string
	Version   uint
	Container string
	At        time.Time
}

// ecRow is one row of the items table.
type ecRow struct {
	Name, WrittenBy string
	DisplayName     sql.NullString
}

// ecPrepare writes the migrations into dir/migrations and creates the
// database in dir/db at version ecFromVersion, in WAL mode. It returns the
// database file and the migrations directory.
func ecPrepare(ctx context.Context, dir string) (dbPath, migDir string, err error) {
	migDir, dbDir := filepath.Join(dir, "migrations"), filepath.Join(dir, "db")
	for _, d := range []string{migDir, dbDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", "", fmt.Errorf("create %s: %w", d, err)
		}
	}
	for name, body := range ecMigrations {
		if err := os.WriteFile(filepath.Join(migDir, name), []byte(body), 0o644); err != nil {
			return "", "", fmt.Errorf("write migration %s: %w", name, err)
		}
	}
	dbPath = filepath.Join(dbDir, ecDBFile)
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: dbPath}).String())
	if err != nil {
		return "", "", fmt.Errorf("create database %s: %w", dbPath, err)
	}
	defer db.Close()
	// WAL is a property of the file: every replica and the migrator get it.
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		return "", "", fmt.Errorf("set WAL mode on %s: %w", dbPath, err)
	}
	h, err := migsqlite.Driver{}.Open(ctx, dbPath, migDir)
	if err != nil {
		return "", "", err
	}
	defer h.Close()
	if err := h.Up(ctx, ecFromVersion); err != nil {
		return "", "", fmt.Errorf("migrate %s to version %d before the replicas start: %w", dbPath, ecFromVersion, err)
	}
	return dbPath, migDir, nil
}

// ecReadBack reads the items table and the schema version from the file.
func ecReadBack(ctx context.Context, dbPath string) (map[string]ecRow, int, bool, error) {
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: dbPath, RawQuery: "_pragma=busy_timeout(10000)"}).String())
	if err != nil {
		return nil, 0, false, fmt.Errorf("open %s to read it back: %w", dbPath, err)
	}
	defer db.Close()
	var version int
	var dirty bool
	if err := db.QueryRowContext(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty); err != nil {
		return nil, 0, false, fmt.Errorf("read the schema version of %s: %w", dbPath, err)
	}
	rows, err := db.QueryContext(ctx, "SELECT id, name, written_by, display_name FROM items")
	if err != nil {
		return nil, version, dirty, fmt.Errorf("read the items of %s: %w", dbPath, err)
	}
	defer rows.Close()
	out := map[string]ecRow{}
	for rows.Next() {
		var id string
		var r ecRow
		if err := rows.Scan(&id, &r.Name, &r.WrittenBy, &r.DisplayName); err != nil {
			return nil, version, dirty, fmt.Errorf("read the items of %s: %w", dbPath, err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, version, dirty, fmt.Errorf("read the items of %s: %w", dbPath, err)
	}
	return out, version, dirty, nil
}

// runExpandContract runs the scenario once and removes everything it
// created except the images and WorkDir. The error is about the scenario
// itself; how the upgrade, the load and the data went is in the result.
func runExpandContract(ctx context.Context, cli *client.Client, cfg ecConfig) (res ecResult, err error) {
	cfg.setDefaults()
	res = ecResult{Images: map[string]string{}}
	label := cfg.label()
	network := cfg.Run + "-net"
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		err = errors.Join(err, zdCleanup(cctx, cli, label, network))
	}()

	dbPath, migDir, err := ecPrepare(ctx, cfg.WorkDir)
	if err != nil {
		return res, err
	}
	// Retries off: a request HAProxy sends to a replica that is gone fails,
	// so zero failures is owed to the drain, not hidden by a retry.
	hpDir := filepath.Join(cfg.WorkDir, "haproxy")
	if err := os.MkdirAll(hpDir, 0o755); err != nil {
		return res, fmt.Errorf("create %s: %w", hpDir, err)
	}
	b, err := startBed(ctx, cli, bedConfig{
		Run: cfg.Run, Image: cfg.V1.Ref, Network: network, WorkDir: cfg.WorkDir, HAProxyDir: hpDir, NoRetry: true,
		Replica: func(o *testkit.ContainerOpts) {
			o.Env = []string{"DEMO_DB=" + ecDBDir + "/" + ecDBFile}
			o.Binds = []string{filepath.Dir(dbPath) + ":" + ecDBDir}
		},
		// The inventory gives the planner the service's database: at version
		// ecFromVersion, migrations in migDir. A release whose
		// migrations_version is above it is an expand/contract upgrade.
		Inventory: func(nodes []string) *inventory.Inventory {
			inv := &inventory.Inventory{
				Nodes: map[string]inventory.Node{},
				Roles: map[string]inventory.Role{zdService: {Services: []string{zdService}}},
				Services: map[string]inventory.Service{zdService: {
					Containers: []inventory.Container{{Name: zdService, Image: cfg.V1.Ref}},
					Database:   &inventory.Database{Driver: "sqlite", URL: dbPath, Migrations: migDir, Version: ecFromVersion},
				}},
			}
			for _, n := range nodes {
				inv.Nodes[n] = inventory.Node{Roles: []string{zdService}}
			}
			return inv
		},
		Agent: true, Logger: cfg.Logger, Version: cfg.Version,
	})
	if err != nil {
		return res, err
	}
	defer b.close(ctx)
	s, names, front := b.stack, b.reps.names, b.front

	load := zdStartLoad(ctx, loadgen.Config{URL: "http://" + front + "/", Rate: cfg.Rate, Items: &loadgen.Items{IDPrefix: cfg.Run + "-"}}, cfg.Progress)
	defer load.stop()
	if err := load.warmUp(ctx); err != nil {
		return res, err
	}
	req, err := events.New(events.Source("cli", ""), events.UpgradeRequested{
		RequestedBy: "cutover expand/contract scenario",
		Release: events.Release{Name: zdService + "-v2", Services: map[string]events.ServiceRelease{zdService: {
			Image: cfg.V2.Ref, MinHealthyMs: 1000, DrainAckTimeoutMs: zdDrainAckTimeout.Milliseconds(), MigrationsVersion: ecToVersion,
		}}},
	})
	if err != nil {
		return res, err
	}
	res.UpgradeID = req.ID()
	res.UpgradeErr, res.Load, err = cfg.upgrade(ctx, s.JetStream(), req, load, func(e events.Event) {
		st := ecStep{Type: e.Type(), At: e.Time()}
		switch e.Type() {
		case events.TypeMigrationRequested:
			if d, err := events.DataAs[events.MigrationRequested](e); err == nil {
				st.Phase = d.Phase
			}
		case events.TypeMigrationCompleted:
			if d, err := events.DataAs[events.MigrationCompleted](e); err == nil {
				st.Version = d.ToVersion
			}
		case events.TypeContainerDraining:
			if d, err := events.DataAs[events.ContainerDraining](e); err == nil {
				st.Container = d.Container
			}
		case events.TypeContainerReplaced:
			if d, err := events.DataAs[events.ContainerReplaced](e); err == nil {
				st.Container = d.Container
			}
		default:
			return
		}
		res.Order = append(res.Order, st)
	})
	if err != nil {
		return res, err
	}
	if res.Images, err = zdVersions(ctx, cli, names, cfg.V1, cfg.V2); err != nil {
		return res, err
	}
	res.Rows, res.Version, res.Dirty, err = ecReadBack(ctx, dbPath)
	return res, err
}

// byVersion counts the acknowledged writes by the version that made them.
func (r ecResult) byVersion() map[string]int {
	n := map[string]int{}
	for _, a := range r.Load.Acked {
		n[a.WrittenBy]++
	}
	return n
}

// dataSummary is one line on the writes and reads of a run.
func (r ecResult) dataSummary() string {
	return fmt.Sprintf("acknowledged writes by version: %s; correct reads (writer->reader): %s; %s; schema version %d", render.Counts(r.byVersion()), render.Counts(r.Load.Reads), render.Plural(len(r.Rows), "row"), r.Version)
}

// ecMaxRowProblems bounds how many wrong rows problems lists one by one.
const ecMaxRowProblems = 20

// problems lists what went wrong in a run, empty when the upgrade
// completed with no failed request, every acknowledged write is in the
// database as written (display_name filled by v2 or by the contract), both
// versions wrote and each read the other's writes, the schema is at
// ecToVersion, every replica runs v2, and the migrations ran in order
// around the roll.
func (r ecResult) problems() []string {
	var out []string
	if r.UpgradeErr != nil {
		out = append(out, r.UpgradeErr.Error())
	}
	if r.Load.Sent == 0 || r.Load.Failed != 0 || r.Load.OK != r.Load.Sent {
		out = append(out, fmt.Sprintf("%d of %d write-and-read-back requests failed (causes %s); want none", r.Load.Failed, r.Load.Sent, render.Counts(r.Load.Errors)))
	}
	if len(r.Load.Acked) < r.Load.OK {
		out = append(out, fmt.Sprintf("%d writes acknowledged, %d requests ok; want every ok request acknowledged", len(r.Load.Acked), r.Load.OK))
	}
	bad := 0
	for _, a := range r.Load.Acked {
		row, ok := r.Rows[a.ID]
		var p string
		switch {
		case !ok:
			p = fmt.Sprintf("acknowledged write %s (by %s) is missing from the database", a.ID, a.WrittenBy)
		case row.Name != a.Name || row.WrittenBy != a.WrittenBy:
			p = fmt.Sprintf("row %s = %+v; want name %q written by %s", a.ID, row, a.Name, a.WrittenBy)
		case !row.DisplayName.Valid || row.DisplayName.String != a.Name:
			p = fmt.Sprintf("row %s display_name = %+v; want %q (written by v2 or backfilled by the contract)", a.ID, row.DisplayName, a.Name)
		default:
			continue
		}
		if bad++; bad <= ecMaxRowProblems {
			out = append(out, p)
		}
	}
	if bad > ecMaxRowProblems {
		out = append(out, fmt.Sprintf("... %d wrong or missing rows in all", bad))
	}
	if n := r.byVersion(); n["v1"] == 0 || n["v2"] == 0 {
		out = append(out, fmt.Sprintf("writes by version: %s; want writes by both v1 and v2", render.Counts(n)))
	}
	if r.Load.Reads["v1->v2"] == 0 || r.Load.Reads["v2->v1"] == 0 {
		out = append(out, fmt.Sprintf("correct reads (writer->reader): %s; want v2 reading v1's writes and v1 reading v2's during the mixed window", render.Counts(r.Load.Reads)))
	}
	if r.Version != ecToVersion || r.Dirty {
		out = append(out, fmt.Sprintf("schema at version %d (dirty %v); want %d, clean", r.Version, r.Dirty, ecToVersion))
	}
	onV2 := 0
	for name, v := range r.Images {
		if v == "v2" {
			onV2++
		} else {
			out = append(out, fmt.Sprintf("%s runs %s after the upgrade, want v2", name, v))
		}
	}
	if onV2 != zdReplicas {
		out = append(out, fmt.Sprintf("%d containers on v2, want %d", onV2, zdReplicas))
	}
	if err := ecCheckOrder(r.Order); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// ecCheckOrder checks, on the upgrade's events in stream order, that the
// expand completed before the first drain and that the contract was
// requested only after every replica was reported replaced.
func ecCheckOrder(order []ecStep) error {
	expandDone, firstDrain, contractAsked, lastReplaced, contractDone := -1, -1, -1, -1, -1
	replaced := map[string]bool{}
	for i, st := range order {
		switch {
		case st.Type == events.TypeMigrationCompleted && st.Version == 2 && expandDone < 0:
			expandDone = i
		case st.Type == events.TypeMigrationCompleted && st.Version == ecToVersion:
			contractDone = i
		case st.Type == events.TypeContainerDraining && firstDrain < 0:
			firstDrain = i
		case st.Type == events.TypeMigrationRequested && st.Phase == "contract" && contractAsked < 0:
			contractAsked = i
		case st.Type == events.TypeContainerReplaced:
			replaced[st.Container], lastReplaced = true, i
		}
	}
	var steps string
	for _, st := range order {
		steps += fmt.Sprintf("\n  %s %s phase=%q version=%d container=%q", st.At.Format(time.StampMilli), st.Type, st.Phase, st.Version, st.Container)
	}
	switch {
	case expandDone < 0 || firstDrain < 0 || contractAsked < 0 || contractDone < 0 || len(replaced) != zdReplicas:
		return fmt.Errorf("incomplete upgrade: want the expand to version 2, %d replicas drained and replaced, then the contract to %d; got:%s", zdReplicas, ecToVersion, steps)
	case expandDone > firstDrain:
		return fmt.Errorf("the first replica was drained before the expand completed:%s", steps)
	case contractAsked < lastReplaced:
		return fmt.Errorf("the contract was requested before every replica ran v2:%s", steps)
	}
	return nil
}
