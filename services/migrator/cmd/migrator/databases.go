package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/services/migrator"
)

// databaseEntry is one database of a --databases file.
type databaseEntry struct {
	Driver string `yaml:"driver"`
	// Location is the path or URL; LocationFile, instead, is a file holding
	// it (for a URL with a password: keep the file mode 0600).
	Location     string `yaml:"location"`
	LocationFile string `yaml:"location_file"`
}

// loadDatabases reads the allow-list: a YAML map from database id (the
// service's name in the inventory) to its driver and location, e.g.
//
//	nova:
//	  driver: postgres
//	  location_file: /run/credentials/cutover-migrator.service/nova-db-url
//	keystone:
//	  driver: mysql
//	  location: mysql://keystone@db1:3306/keystone
//
// Every problem is reported at once, naming the id and field.
func loadDatabases(path string) (map[string]migrator.AllowedDatabase, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --databases: %w", err)
	}
	var entries map[string]databaseEntry
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("%s: %w (want a map: ID: {driver: postgres, location: URL | location_file: FILE})", path, err)
	}
	ids := make([]string, 0, len(entries))
	for id := range entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make(map[string]migrator.AllowedDatabase, len(entries))
	var errs []error
	for _, id := range ids {
		e := entries[id]
		switch e.Driver {
		case "sqlite", "postgres", "mysql", "mariadb":
		default:
			errs = append(errs, fmt.Errorf("%s: %s.driver %q: want sqlite, postgres, mysql or mariadb", path, id, e.Driver))
		}
		loc := e.Location
		switch {
		case e.Location != "" && e.LocationFile != "":
			errs = append(errs, fmt.Errorf("%s: %s: give location or location_file, not both", path, id))
		case e.LocationFile != "":
			b, err := os.ReadFile(e.LocationFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s.location_file: %w", path, id, err))
			}
			loc = strings.TrimSpace(string(b))
		}
		if loc == "" && e.LocationFile == "" {
			errs = append(errs, fmt.Errorf("%s: %s: location (or location_file) is required", path, id))
		}
		out[id] = migrator.AllowedDatabase{Driver: e.Driver, Location: loc}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no database; list the databases this migrator may migrate", path)
	}
	return out, nil
}
