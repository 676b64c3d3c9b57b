package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDatabases(t *testing.T) {
	dir := t.TempDir()
	urlFile := filepath.Join(dir, "nova-url")
	if err := os.WriteFile(urlFile, []byte("postgres://nova:pw@db/nova\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(s string) string {
		p := filepath.Join(dir, "dbs.yaml")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dbs, err := loadDatabases(write("nova:\n  driver: postgres\n  location_file: " + urlFile + "\napp:\n  driver: sqlite\n  location: /var/lib/app.db\n"))
	if err != nil {
		t.Fatal(err)
	}
	if dbs["nova"].Location != "postgres://nova:pw@db/nova" || dbs["app"].Driver != "sqlite" {
		t.Fatalf("loaded %+v", dbs)
	}
	_, err = loadDatabases(write("a:\n  driver: oracle\n  location: x\nb:\n  driver: sqlite\n"))
	for _, w := range []string{`a.driver "oracle"`, "b: location (or location_file) is required"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
	if _, err := loadDatabases(write("a:\n  driver: sqlite\n  path: x\n")); err == nil || !strings.Contains(err.Error(), "path") {
		t.Errorf("an unknown field: %v", err)
	}
	if err := run([]string{"--nats", "nats://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "--databases FILE is required") {
		t.Errorf("no allow-list: %v", err)
	}
}
