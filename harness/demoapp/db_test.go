package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// newItemsApp serves the items API of one schema generation on path.
func newItemsApp(t *testing.T, path string, schema int, version string) *httptest.Server {
	t.Helper()
	items, err := openItems(t.Context(), path, schema, version)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = items.Close() })
	a := &app{cfg: config{version: version, mode: modeHealthy, dataDir: t.TempDir()}, started: time.Now(), items: items}
	srv := httptest.NewServer(a.routes())
	t.Cleanup(srv.Close)
	return srv
}

// TestItemsAcrossSchemaGenerations runs v1 and v2 of the items API on one
// SQLite file through an expand (add display_name) and a contract
// (backfill): each version reads what the other wrote, and v2 refuses to
// start before the expand.
func TestItemsAcrossSchemaGenerations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, written_by TEXT NOT NULL)")

	if _, err := openItems(t.Context(), path, schemaV2, "v2"); err == nil {
		t.Fatal("v2 started on a database without display_name; want it refused")
	}
	v1 := newItemsApp(t, path, schemaV1, "v1")
	post := func(srv *httptest.Server, id, name string) {
		t.Helper()
		if code, body := request(t, http.MethodPost, srv.URL+"/items", `{"id":"`+id+`","name":"`+name+`"}`); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", id, code, body)
		}
	}
	post(v1, "a", "alpha")
	exec("ALTER TABLE items ADD COLUMN display_name TEXT") // expand
	post(v1, "b", "bravo")                                 // v1 still writes after expand
	v2 := newItemsApp(t, path, schemaV2, "v2")
	post(v2, "c", "charlie")

	tests := []struct {
		name            string
		srv             *httptest.Server
		id, want, wrote string
	}{
		{"v1 reads v1 before expand", v1, "a", "alpha", "v1"},
		{"v2 reads v1 before expand", v2, "a", "alpha", "v1"},
		{"v2 reads v1 after expand", v2, "b", "bravo", "v1"},
		{"v1 reads v2", v1, "c", "charlie", "v2"},
		{"v2 reads v2", v2, "c", "charlie", "v2"},
	}
	check := func(phase string) {
		t.Helper()
		for _, tt := range tests {
			t.Run(phase+"/"+tt.name, func(t *testing.T) {
				code, body := request(t, http.MethodGet, tt.srv.URL+"/items/"+tt.id, "")
				var got item
				if code != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
					t.Fatalf("GET %s: %d %s", tt.id, code, body)
				}
				if got.Name != tt.want || got.WrittenBy != tt.wrote {
					t.Errorf("GET %s = %+v, want name %q written by %s", tt.id, got, tt.want, tt.wrote)
				}
			})
		}
	}
	check("mixed")
	exec("UPDATE items SET display_name = name WHERE display_name IS NULL") // contract
	check("contracted")

	if code, body := request(t, http.MethodPost, v2.URL+"/items", `{"id":"a","name":"again"}`); code != http.StatusConflict {
		t.Errorf("POST of an existing id: %d %s, want 409", code, body)
	}
	if code, _ := request(t, http.MethodGet, v1.URL+"/items/zzz", ""); code != http.StatusNotFound {
		t.Errorf("GET of a missing id: %d, want 404", code)
	}
	if code, _ := request(t, http.MethodPost, v1.URL+"/items", `{"id":"x/y","name":"n"}`); code != http.StatusBadRequest {
		t.Errorf("POST of an id with '/': %d, want 400", code)
	}
}
