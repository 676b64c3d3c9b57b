package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cutover-dev/cutover/harness/internal/itemapi"
)

// The database mode (DEMO_DB set): the items API on a SQLite file shared by
// every replica. Two schema generations of the app exist, chosen with
// DEMO_DB_SCHEMA, so that an expand/contract upgrade can run both at once
// against the same table:
//
//   - 1 (v1) knows items(id, name, written_by): it writes name and reads name.
//   - 2 (v2) also knows the nullable display_name column the expand
//     migration adds: it writes name and display_name and reads
//     coalesce(display_name, name), so rows v1 wrote keep reading right.
//     It refuses to start while display_name is missing (expand not run).
const (
	schemaV1 = 1
	schemaV2 = 2
)

// dbBusyTimeout is how long a statement waits for another replica's (or the
// migrator's) write lock; the load generator's request timeout is 2s.
const dbBusyTimeout = 1500 * time.Millisecond

// item is the JSON body of POST /items and of the answers.
type item struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	WrittenBy string `json:"written_by,omitempty"`
	// ReadBy is the version of the replica that answered a read.
	ReadBy string `json:"read_by,omitempty"`
}

// itemStore is the items table as one schema generation sees it.
type itemStore struct {
	db      *sql.DB
	schema  int
	version string
}

// openItems opens the SQLite file at path (WAL, busy timeout) and checks
// that the table has the columns the schema generation needs.
func openItems(ctx context.Context, path string, schema int, version string) (*itemStore, error) {
	if schema != schemaV1 && schema != schemaV2 {
		return nil, fmt.Errorf("open items database: DEMO_DB_SCHEMA %d is unknown; use 1 or 2", schema)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", dbBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		return nil, fmt.Errorf("open items database %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	cols := "id, name, written_by"
	if schema == schemaV2 {
		cols += ", display_name"
	}
	if _, err := db.ExecContext(ctx, "SELECT "+cols+" FROM items LIMIT 0"); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("check items table in %s for schema %d: %w; run the migrations this version needs first", path, schema, err)
	}
	return &itemStore{db: db, schema: schema, version: version}, nil
}

// Close closes the database.
func (s *itemStore) Close() error { return s.db.Close() }

// errDuplicate is returned by insert for an id that exists.
var errDuplicate = errors.New("item exists")

func (s *itemStore) insert(ctx context.Context, it item) error {
	var err error
	if s.schema == schemaV1 {
		_, err = s.db.ExecContext(ctx, "INSERT INTO items (id, name, written_by) VALUES (?, ?, ?)", it.ID, it.Name, s.version)
	} else {
		_, err = s.db.ExecContext(ctx, "INSERT INTO items (id, name, display_name, written_by) VALUES (?, ?, ?, ?)", it.ID, it.Name, it.Name, s.version)
	}
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return errDuplicate
	}
	return err
}

func (s *itemStore) get(ctx context.Context, id string) (item, error) {
	query := "SELECT id, name, written_by FROM items WHERE id = ?"
	if s.schema == schemaV2 {
		query = "SELECT id, coalesce(display_name, name), written_by FROM items WHERE id = ?"
	}
	it := item{ReadBy: s.version}
	err := s.db.QueryRowContext(ctx, query, id).Scan(&it.ID, &it.Name, &it.WrittenBy)
	return it, err
}

func (a *app) handlePostItem(w http.ResponseWriter, r *http.Request) {
	var it item
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&it); err != nil {
		http.Error(w, "decode item: "+err.Error(), http.StatusBadRequest)
		return
	}
	if it.ID == "" || it.Name == "" || strings.ContainsRune(it.ID, '/') {
		http.Error(w, "item needs an id (no '/') and a name", http.StatusBadRequest)
		return
	}
	err := a.items.insert(r.Context(), it)
	it.WrittenBy = a.cfg.version
	itemapi.Created(w, it.ID, errors.Is(err, errDuplicate), err, it)
}

func (a *app) handleGetItem(w http.ResponseWriter, r *http.Request) {
	it, err := a.items.get(r.Context(), r.PathValue("id"))
	itemapi.Found(w, r.PathValue("id"), err, it)
}
