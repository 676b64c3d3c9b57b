package events_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutover-dev/cutover/events/internal/contractgen"
)

// TestGeneratedFilesUpToDate fails when events/schemas or docs/events.md
// differ from what the code generates: run `go generate ./events`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	schemas, err := contractgen.Schemas(".")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("schemas/*.json")
	if len(files) != len(schemas) {
		t.Errorf("events/schemas has %d files, the catalog %d types: run go generate ./events", len(files), len(schemas))
	}
	for name, want := range schemas {
		got, err := os.ReadFile(filepath.Join("schemas", name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("events/schemas/%s is stale or missing: run go generate ./events", name)
		}
	}
	md, err := contractgen.Markdown(schemas)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../docs/events.md")
	if err != nil || !bytes.Equal(got, md) {
		t.Error("docs/events.md is stale: run go generate ./events")
	}
}
