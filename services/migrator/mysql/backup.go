package mysql

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/cutover-dev/cutover/services/migrator"
)

// Snapshot methods (Driver.Method, a request's snapshot_method).
const (
	// MethodAuto, the default, takes a backup (MethodBackup) when the
	// database's tables exceed Driver.BackupAbove and the backup method can
	// run here (mariadb-backup installed, the server's data directory
	// readable, every table one it can copy), and a dump otherwise: below
	// that size the dump's snapshot is the faster (mariadb-backup's fixed
	// cost is seconds), above it the backup is faster both ways
	// (docs/benchmarks.md).
	MethodAuto = "auto"
	// MethodDump is mariadb-dump --single-transaction, restored by loading
	// the dump: works wherever the server is; the default.
	MethodDump = "dump"
	// MethodBackup is a physical copy with mariadb-backup, restored by
	// IMPORT TABLESPACE: about the time of a file copy both ways, but the
	// migrator must run on the server's machine, with read and write
	// access to its data directory, and every table must be InnoDB.
	MethodBackup = "backup"
)

// backupSuffix ends the ids of backup snapshots (directories).
const backupSuffix = ".backup"

// schemaFile is the backup snapshot's schema (mariadb-dump --no-data), and
// tablesDir the directory of its tables' .ibd and .cfg files.
const (
	schemaFile = "schema.sql"
	tablesDir  = "tables"
)

// fileNameRE is what a table name must be for its files to be named as
// the table (MariaDB encodes other characters in file names).
var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// defaultBackupAbove is Driver.BackupAbove's default.
const defaultBackupAbove = 512 << 20

// SetSnapshotMethod sets the method of the next snapshots: auto, dump or
// backup ("" for the driver's, Driver.Method).
func (d *Database) SetSnapshotMethod(method string) error {
	switch method {
	case "":
		d.method = d.drv.Method
	case MethodAuto, MethodDump, MethodBackup:
		d.method = method
	default:
		return fmt.Errorf("snapshot_method %q: the mysql driver's methods are auto (default), dump and backup", method)
	}
	return nil
}

// autoMethod chooses the method of a MethodAuto snapshot (see MethodAuto).
func (d *Database) autoMethod(ctx context.Context, db querier) string {
	var size int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = ?`, d.name).Scan(&size); err != nil || size < d.drv.BackupAbove {
		return MethodDump
	}
	if _, err := exec.LookPath(d.tool("mariadb-backup", "mariabackup")); err != nil {
		return MethodDump
	}
	if _, err := d.dataDir(ctx, db); err != nil {
		return MethodDump
	}
	if refusals, err := backupRefusals(ctx, db, d.name); err != nil || len(refusals) > 0 {
		return MethodDump
	}
	return MethodBackup
}

// dataDir returns the server's data directory, which the backup method
// reads (and a backup restore writes into): it must be on this machine,
// readable and writable by the migrator.
func (d *Database) dataDir(ctx context.Context, db querier) (string, error) {
	var dir string
	if err := db.QueryRowContext(ctx, `SELECT @@datadir`).Scan(&dir); err != nil {
		return "", fmt.Errorf("read the server's data directory: %w", err)
	}
	// Readable to copy, writable to import into the scratch database
	// beside it (same owner and mode).
	own := filepath.Join(dir, d.name)
	if _, err := os.ReadDir(own); err != nil {
		return "", fmt.Errorf("snapshot method backup needs the server's data directory on this machine, readable by the migrator (%v); run the migrator there as root or the server's user, or use the dump method", err)
	}
	if err := syscall.Access(own, 2 /* W_OK */); err != nil {
		return "", fmt.Errorf("snapshot method backup needs to write into the server's data directory to restore (%s: %v); run the migrator as root or the server's user, or use the dump method", own, err)
	}
	return dir, nil
}

// backupRefusals lists what the backup method cannot copy and import
// table by table: tables not InnoDB, partitioned, with a FULLTEXT index, or
// whose names are not their file names.
func backupRefusals(ctx context.Context, db querier, name string) ([]string, error) {
	rows, err := db.QueryContext(ctx, `
		SELECT t.table_name, COALESCE(t.engine, ''), t.create_options LIKE '%partitioned%',
			EXISTS (SELECT 1 FROM information_schema.statistics s WHERE s.table_schema = t.table_schema AND s.table_name = t.table_name AND s.index_type = 'FULLTEXT')
		FROM information_schema.tables t WHERE t.table_schema = ? AND t.table_type = 'BASE TABLE' ORDER BY t.table_name`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t, engine string
		var partitioned, fulltext bool
		if err := rows.Scan(&t, &engine, &partitioned, &fulltext); err != nil {
			return nil, err
		}
		switch {
		case !strings.EqualFold(engine, "InnoDB"):
			out = append(out, fmt.Sprintf("table %s is %s, not InnoDB", t, engine))
		case partitioned:
			out = append(out, fmt.Sprintf("table %s is partitioned", t))
		case fulltext:
			out = append(out, fmt.Sprintf("table %s has a FULLTEXT index", t))
		case !fileNameRE.MatchString(t):
			out = append(out, fmt.Sprintf("table %q has characters other than letters, digits and _", t))
		}
	}
	return out, rows.Err()
}

// snapshotBackup takes a physical snapshot: the schema with mariadb-dump
// --no-data (tables and triggers), then the tables' files with
// mariadb-backup --backup --no-lock --databases (InnoDB pages and the redo
// written meanwhile, without blocking commits: consistent for InnoDB tables
// as long as no DDL runs on the database meanwhile, which the migrator's
// lock keeps its own migrations from doing), prepared with --export so that
// each table can be imported. Only the schema and the tables' .ibd and
// .cfg files are kept, in a directory renamed to its id when complete; its
// label records the schema's SHA-256 and the files' total size.
func (d *Database) snapshotBackup(ctx context.Context, db *sql.DB, l label, dir string, now time.Time) (migrator.Snapshot, error) {
	refusals, err := backupRefusals(ctx, db, d.name)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: list its tables: %w", d.key, err)
	}
	if len(refusals) > 0 {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s with mariadb-backup: %s; use the dump method for this database", d.key, strings.Join(refusals, "; "))
	}
	datadir, err := d.dataDir(ctx, db)
	if err != nil {
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s: %w", d.key, err)
	}
	id, final, tmp, opts, err := d.newSnapshot(dir, now, backupSuffix)
	if err != nil {
		return migrator.Snapshot{}, err
	}
	defer os.Remove(opts)
	fail := func(err error) (migrator.Snapshot, error) {
		_ = os.RemoveAll(tmp)
		return migrator.Snapshot{}, fmt.Errorf("snapshot %s with mariadb-backup into %s: %w (check free space in %s)", d.key, tmp, err, dir)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fail(err)
	}
	schema := filepath.Join(tmp, schemaFile)
	sum, err := d.dumpSchema(ctx, opts, schema)
	if err != nil {
		return fail(err)
	}
	raw := filepath.Join(tmp, "backup")
	for _, args := range [][]string{
		{"--defaults-file=" + opts, "--backup", "--no-lock", "--datadir=" + datadir, "--databases=" + d.name, "--target-dir=" + raw},
		{"--no-defaults", "--prepare", "--export", "--target-dir=" + raw},
	} {
		var out tail
		cmd := exec.CommandContext(ctx, d.tool("mariadb-backup", "mariabackup"), args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("mariadb-backup %s: %w: %s", args[1], err, out.String()))
		}
	}
	// Keep the tables' files only (the backup's system tablespace and redo
	// log are as large as the server's).
	if err := os.Rename(filepath.Join(raw, d.name), filepath.Join(tmp, tablesDir)); err != nil {
		return fail(err)
	}
	if err := os.RemoveAll(raw); err != nil {
		return fail(err)
	}
	size, err := d.checkTables(ctx, db, filepath.Join(tmp, tablesDir))
	if err != nil {
		return fail(err)
	}
	l.Method, l.Size, l.SHA256 = MethodBackup, size, sum
	if err := l.publish(tmp, final); err != nil {
		return fail(err)
	}
	return migrator.Snapshot{ID: id, Time: now, Location: final, Version: l.Version, Dirty: l.Dirty}, nil
}

// dumpSchema writes the database's tables and triggers, without rows, to
// p and returns its SHA-256.
func (d *Database) dumpSchema(ctx context.Context, opts, p string) (string, error) {
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	defer out.Close()
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(out, h))
	var stderr tail
	cmd := exec.CommandContext(ctx, d.tool("mariadb-dump", "mysqldump"), "--defaults-file="+opts,
		"--no-data", "--single-transaction", "--skip-lock-tables", "--triggers",
		"--default-character-set=utf8mb4", "--skip-dump-date", d.name)
	cmd.Stdout, cmd.Stderr = bw, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dump the schema: %w: %s", err, stderr.String())
	}
	if err := errors.Join(bw.Flush(), out.Sync()); err != nil {
		return "", err
	}
	size, err := out.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	if err := checkCompleted(p, size); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkTables checks that dir holds an .ibd and a .cfg file for every base
// table of the database and returns their total size.
func (d *Database) checkTables(ctx context.Context, db querier, dir string) (int64, error) {
	tables, err := baseTables(ctx, db, d.name)
	if err != nil {
		return 0, err
	}
	var size int64
	for _, t := range tables {
		for _, ext := range []string{".ibd", ".cfg"} {
			fi, err := os.Stat(filepath.Join(dir, t+ext))
			if err != nil {
				return 0, fmt.Errorf("table %s: %w (a table created during the backup?)", t, err)
			}
			size += fi.Size()
		}
	}
	return size, nil
}

// inspectBackup checks that backup snapshot p (a directory) holds its
// schema and tables, their size as its label says.
func inspectBackup(p string, l label) error {
	entries, err := os.ReadDir(filepath.Join(p, tablesDir))
	if err != nil {
		return fmt.Errorf("%w: %s is incomplete (%v)", migrator.ErrSnapshotNotFound, p, err)
	}
	if !fileExists(filepath.Join(p, schemaFile)) {
		return fmt.Errorf("%w: %s has no %s", migrator.ErrSnapshotNotFound, p, schemaFile)
	}
	var size int64
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".ibd") || strings.HasSuffix(n, ".cfg") {
			fi, err := e.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
	}
	if size != l.Size {
		return fmt.Errorf("backup %s holds %d bytes of tables, its label says %d: it was changed or damaged", p, size, l.Size)
	}
	return nil
}

// importBackup fills database scratch (created empty) from backup snapshot
// p: its schema loaded (tables and triggers, no rows), then each table's
// tablespace discarded, the snapshot's .ibd and .cfg copied into the
// server's data directory (owned as the directory, fsynced) and imported.
// InnoDB checks every page's checksum as it imports.
func (d *Database) importBackup(ctx context.Context, admin *sql.DB, p, scratch, schemaSum string) error {
	if err := d.load(ctx, filepath.Join(p, schemaFile), scratch, schemaSum); err != nil {
		return err
	}
	datadir, err := d.dataDir(ctx, admin)
	if err != nil {
		return err
	}
	into := filepath.Join(datadir, scratch)
	var st syscall.Stat_t
	if err := syscall.Stat(into, &st); err != nil {
		return fmt.Errorf("import into %s: %w", into, err)
	}
	tables, err := baseTables(ctx, admin, scratch)
	if err != nil {
		return err
	}
	c, err := admin.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `SET SESSION foreign_key_checks = 0`); err != nil {
		return err
	}
	for _, t := range tables {
		table := quote(scratch) + "." + quote(t)
		if _, err := c.ExecContext(ctx, `ALTER TABLE `+table+` DISCARD TABLESPACE`); err != nil {
			return fmt.Errorf("import %s: %w", t, err)
		}
		for _, ext := range []string{".ibd", ".cfg"} {
			dst := filepath.Join(into, t+ext)
			if err := copySynced(filepath.Join(p, tablesDir, t+ext), dst); err != nil {
				return fmt.Errorf("import %s: %w", t, err)
			}
			if err := os.Chown(dst, int(st.Uid), int(st.Gid)); err != nil {
				return fmt.Errorf("import %s: %w", t, err)
			}
		}
		if _, err := c.ExecContext(ctx, `ALTER TABLE `+table+` IMPORT TABLESPACE`); err != nil {
			return fmt.Errorf("import %s: %w", t, err)
		}
		_ = os.Remove(filepath.Join(into, t+".cfg"))
	}
	return nil
}

// copySynced copies src to a new file dst and fsyncs it.
func copySynced(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o660)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

// removeSnapshot removes the dump file or backup directory at p.
func removeSnapshot(p string) error {
	err := os.RemoveAll(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
