package migrator

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cutover-dev/cutover/events"
)

// AllowedDatabase is one database a migrator may migrate: the location is
// the migrator's own (its configuration), never one a message chose.
type AllowedDatabase struct {
	// Driver is sqlite, postgres or mysql.
	Driver string
	// Location is a file path for sqlite, a URL for postgres or mysql (it
	// may carry credentials: it comes from the migrator's configuration,
	// not from the bus, and is shown redacted).
	Location string
}

// ErrNotAllowed is returned (as a permanent error: the request is rejected
// with dev.cutover.event.rejected) for a request naming a database outside
// the migrator's allow-list.
var ErrNotAllowed = errors.New("database not in the migrator's allow-list")

// allow resolves a request's database through the allow-list: with one
// configured, the request must name a known database_id with the same
// driver, and the configured location replaces the request's. Without an
// allow-list (Config.Databases nil) the request's location is used as is.
func (m *Migrator) allow(id string, driver, location *string) error {
	if m.cfg.Databases == nil {
		return nil
	}
	if id == "" {
		return events.Permanent(fmt.Errorf("%w: the request names no database_id, and this migrator migrates only the databases of its --databases file (%s); name one of them", ErrNotAllowed, m.allowedIDs()))
	}
	db, ok := m.cfg.Databases[id]
	if !ok {
		return events.Permanent(fmt.Errorf("%w: database_id %q is not one of %s; add it to the migrator's --databases file or fix the inventory", ErrNotAllowed, id, m.allowedIDs()))
	}
	if canonicalDriver(db.Driver) != canonicalDriver(*driver) {
		return events.Permanent(fmt.Errorf("%w: database_id %q is a %s database here, the request says driver %q; give driver %s (cutover db: --driver %s)", ErrNotAllowed, id, db.Driver, *driver, db.Driver, db.Driver))
	}
	*location = db.Location
	return nil
}

func (m *Migrator) allowedIDs() string {
	ids := make([]string, 0, len(m.cfg.Databases))
	for id := range m.cfg.Databases {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

func canonicalDriver(d string) string {
	if slices.Contains([]string{"mariadb", "mysql"}, d) {
		return "mysql"
	}
	return d
}
