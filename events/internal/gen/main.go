// Command gen writes events/schemas/*.json and docs/events.md from the event
// catalog. Run it with `go generate ./events` from the repository root.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cutover-dev/cutover/events/internal/contractgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// run expects the events directory as its working directory, as go generate sets it.
func run() error {
	schemas, err := contractgen.Schemas(".")
	if err != nil {
		return err
	}
	if err := os.MkdirAll("schemas", 0o755); err != nil {
		return fmt.Errorf("create schemas dir: %w", err)
	}
	for name, raw := range schemas {
		if err := os.WriteFile(filepath.Join("schemas", name), raw, 0o644); err != nil {
			return fmt.Errorf("write schema %s: %w", name, err)
		}
	}
	md, err := contractgen.Markdown(schemas)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "events.md"), md, 0o644); err != nil {
		return fmt.Errorf("write docs/events.md: %w", err)
	}
	return nil
}
