package inventory

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cutover-dev/cutover/inventory/yamlpos"
)

// Inventory is a fleet as written in YAML.
//
//	nodes:
//	  ctl01: {roles: [controller], address: 10.0.0.11}
//	  cmp01: {roles: [compute]}
//	roles:
//	  controller: {services: [mariadb, keystone], serial: "1"}
//	  compute:    {services: [nova-compute, nova-libvirt], serial: "25%"}
//	services:
//	  keystone:
//	    max_unavailable: 1          # a count or a percent of the instances
//	    max_interruption: 5s
//	    strategy: start-first
//	    depends_on: [mariadb]
//	    database: {driver: postgres, url: postgres://..., migrations: /migrations, version: 42}
//	    containers:
//	      - name: keystone
//	        image: quay.io/openstack.kolla/keystone:2024.1
//	        volumes: [/etc/kolla/keystone:/var/lib/kolla/config_files:ro]
//	        env: {KOLLA_CONFIG_STRATEGY: COPY_ALWAYS}
//	        health: {cmd: "healthcheck_curl http://localhost:5000", interval: 30s, timeout: 30s, retries: 3}
type Inventory struct {
	// Nodes maps a node name (its node-updater's name) to its roles.
	Nodes map[string]Node `yaml:"nodes" json:"nodes"`
	// Roles maps a role name to the services it runs.
	Roles map[string]Role `yaml:"roles" json:"roles"`
	// Services maps a service name (the dev.cutover.service label) to its containers and settings.
	Services map[string]Service `yaml:"services" json:"services"`
	// MaxDrained bounds how many workload hosts one wave drains: a count or
	// a percent of the nodes whose workload host changes (default 5%, at
	// least 1). Draining moves every workload off a node, so it is capped
	// apart from each service's max_unavailable.
	MaxDrained string `yaml:"max_drained,omitempty" json:"max_drained,omitempty"`
}

// Node is one host of the fleet.
type Node struct {
	// Roles are the roles the node plays; it runs the union of their services.
	Roles []string `yaml:"roles" json:"roles"`
	// Address is how operators reach the node (informational).
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	// Vars are free-form host variables (kept from imported inventories).
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
	// Images overrides, per container name, the image the node runs now
	// (for a fleet part-way through an upgrade).
	Images map[string]string `yaml:"images,omitempty" json:"images,omitempty"`
}

// Role is a named set of services (a composable role).
type Role struct {
	// Services are the services every node of the role runs.
	Services []string `yaml:"services" json:"services"`
	// Serial is the default max_unavailable of the role's services: a count
	// or a percent of instances. Empty means TripleO's defaults: 25% for a
	// role whose name contains "compute", 1 otherwise.
	Serial string `yaml:"serial,omitempty" json:"serial,omitempty"`
}

// Service is one service: its containers and how to roll them.
type Service struct {
	// Containers are the service's containers on each node that runs it, in update order.
	Containers []Container `yaml:"containers" json:"containers"`
	// Strategy is stop-first (default) or start-first.
	Strategy string `yaml:"strategy,omitempty" json:"strategy,omitempty"`
	// MaxUnavailable bounds how many instances may be down at once: a count or a percent.
	MaxUnavailable string `yaml:"max_unavailable,omitempty" json:"max_unavailable,omitempty"`
	// MaxInterruption bounds one instance's interruption, e.g. 5s (network agents).
	MaxInterruption string `yaml:"max_interruption,omitempty" json:"max_interruption,omitempty"`
	// DependsOn names services that must be rolled before this one.
	DependsOn []string `yaml:"depends_on,omitempty" json:"depends_on,omitempty"`
	// Database is the service's database, when it has one.
	Database *Database `yaml:"database,omitempty" json:"database,omitempty"`
	// PerHost marks a daemon that serves only its own host (iscsid, cron,
	// a log shipper): taking it down on a node the wave already updates
	// costs nothing more, so it never throttles the other services' waves.
	PerHost bool `yaml:"per_host,omitempty" json:"per_host,omitempty"`
}

// Container is one container of a service.
type Container struct {
	// Name is the container name on every node of the service.
	Name string `yaml:"name" json:"name"`
	// Image is the image the container runs now.
	Image string `yaml:"image" json:"image"`
	// Volumes are its volumes and bind mounts, docker-style (src:dst[:mode]).
	Volumes []string `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	// Env is its environment.
	Env map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	// Health is its health probe.
	Health *Probe `yaml:"health,omitempty" json:"health,omitempty"`
	// WorkloadHost marks a container that hosts workloads (e.g. libvirt):
	// it is only touched on a drained node.
	WorkloadHost bool `yaml:"workload_host,omitempty" json:"workload_host,omitempty"`
}

// Probe is a container health probe.
type Probe struct {
	// Cmd is the command run in the container; exit 0 means healthy.
	Cmd string `yaml:"cmd" json:"cmd"`
	// Interval, Timeout are durations such as 30s.
	Interval string `yaml:"interval,omitempty" json:"interval,omitempty"`
	Timeout  string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Retries is how many failures make the container unhealthy.
	Retries int `yaml:"retries,omitempty" json:"retries,omitempty"`
}

// Database is a service's database and its migrations.
type Database struct {
	// Driver is sqlite, postgres, or mysql (MariaDB or MySQL; mariadb is
	// the same driver).
	Driver string `yaml:"driver" json:"driver"`
	// URL locates the database: a file for sqlite, a URL for postgres
	// (postgres://user@host:port/db) or mysql (mysql://user@host:port/db).
	URL string `yaml:"url" json:"url"`
	// Migrations is the migrations path inside the service's image.
	Migrations string `yaml:"migrations" json:"migrations"`
	// Version is the database's current schema version, as last reported.
	Version int `yaml:"version" json:"version"`
	// SnapshotMethod is how the migrator copies the database before it
	// changes. PostgreSQL: auto (default: TEMPLATE when no session is
	// connected, pg_dump when one is), template (fastest; terminates the
	// sessions for the copy) or dump. MariaDB/MySQL: auto (default: backup
	// above 512 MiB where it can run, else dump), dump (mariadb-dump) or
	// backup (mariadb-backup and IMPORT TABLESPACE: about a file copy's time
	// both ways; the migrator must run on the server's machine with access
	// to its data directory, every table InnoDB).
	SnapshotMethod string `yaml:"snapshot_method,omitempty" json:"snapshot_method,omitempty"`
	// Fence is connect to keep other roles out of a PostgreSQL database
	// while it migrates (no write can land after the snapshot; they are
	// disconnected for the run), read-only to let them read but not write
	// for the run, or none (default).
	Fence string `yaml:"fence,omitempty" json:"fence,omitempty"`
	// Commands, instead of Migrations, migrates the database with commands
	// run in a one-off container from the service's new image (OpenStack's
	// db_sync), one per phase; any image change of the service runs them.
	Commands *DatabaseCommands `yaml:"commands,omitempty" json:"commands,omitempty"`
}

// secretEnv matches environment variable names that hold secrets.
var secretEnv = regexp.MustCompile(`(?i)(PASS|SECRET|TOKEN|CREDENTIAL|PRIVATE|_KEY$|^KEY$)`)

// DatabaseCommands are a service's migration commands, as Kolla runs them
// in bootstrap containers (KOLLA_BOOTSTRAP set): expand before the rolling
// waves, then, once every instance runs the new image (the version
// barrier), migrate, the online data migrations (repeated while they exit
// 1) and contract. Phases without a command are skipped.
type DatabaseCommands struct {
	Expand     []string `yaml:"expand,omitempty" json:"expand,omitempty"`
	Migrate    []string `yaml:"migrate,omitempty" json:"migrate,omitempty"`
	OnlineData []string `yaml:"online_data,omitempty" json:"online_data,omitempty"`
	Contract   []string `yaml:"contract,omitempty" json:"contract,omitempty"`
	// Version prints the schema version (nova-manage db version).
	Version []string `yaml:"version,omitempty" json:"version,omitempty"`
	// Env, Mounts (host:container[:ro]) and Network are the container's,
	// as the service's own containers have them (config directories).
	Env     []string `yaml:"env,omitempty" json:"env,omitempty"`
	Mounts  []string `yaml:"mounts,omitempty" json:"mounts,omitempty"`
	Network string   `yaml:"network,omitempty" json:"network,omitempty"`
	// Timeout bounds one run, a duration such as 10m (default the migrator's).
	Timeout string `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Load reads and validates an inventory file.
func Load(path string) (*Inventory, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(path, raw)
}

// Parse decodes and validates an inventory. Every problem is reported at
// once, each as "file:line: field: problem and fix".
func Parse(name string, raw []byte) (*Inventory, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, yamlpos.Explain(name, raw, err, "")
	}
	var inv Inventory
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&inv); err != nil {
		return nil, yamlpos.Explain(name, raw, err, "see the inventory format in the cutover README")
	}
	if errs := inv.validate(func(path []string) string {
		return fmt.Sprintf("%s:%d: %s", name, yamlpos.Line(&root, path), yamlpos.Join(path))
	}); errs != nil {
		return nil, errs
	}
	return &inv, nil
}

// Validate checks an inventory built in code (e.g. by an importer); errors
// name the field but no line.
func (inv *Inventory) Validate() error {
	return inv.validate(yamlpos.Join)
}

func (inv *Inventory) validate(where func([]string) string) error {
	var errs []error
	bad := func(path []string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", where(path), fmt.Sprintf(format, args...)))
	}
	if len(inv.Nodes) == 0 {
		bad([]string{"nodes"}, "is empty; list the fleet's nodes and their roles")
	}
	if inv.MaxDrained != "" {
		if _, err := ParseAmount(inv.MaxDrained); err != nil {
			bad([]string{"max_drained"}, "%v", err)
		}
	}
	for _, n := range sortedKeys(inv.Nodes) {
		node := inv.Nodes[n]
		if len(node.Roles) == 0 {
			bad([]string{"nodes", n, "roles"}, "is empty; give node %s at least one role", n)
		}
		for i, r := range node.Roles {
			if _, ok := inv.Roles[r]; !ok {
				bad([]string{"nodes", n, "roles", strconv.Itoa(i)}, "role %q is not defined under roles (defined: %s)", r, strings.Join(sortedKeys(inv.Roles), ", "))
			}
		}
		if len(node.Images) > 0 {
			// An override of a container the node does not run would be
			// silently ignored by the planner.
			runs := map[string]bool{}
			for _, s := range inv.ServicesOf(n) {
				for _, c := range inv.Services[s].Containers {
					runs[c.Name] = true
				}
			}
			for _, c := range sortedKeys(node.Images) {
				switch {
				case !runs[c]:
					bad([]string{"nodes", n, "images", c}, "container %q is not one node %s runs (its roles' services' containers: %s); fix the name or the roles", c, n, strings.Join(sortedKeys(runs), ", "))
				case node.Images[c] == "":
					bad([]string{"nodes", n, "images", c}, "is empty; give the image container %s runs on node %s, or remove the line", c, n)
				}
			}
		}
	}
	for _, r := range sortedKeys(inv.Roles) {
		role := inv.Roles[r]
		for i, s := range role.Services {
			if _, ok := inv.Services[s]; !ok {
				bad([]string{"roles", r, "services", strconv.Itoa(i)}, "service %q is not defined under services", s)
			}
		}
		if role.Serial != "" {
			if _, err := ParseAmount(role.Serial); err != nil {
				bad([]string{"roles", r, "serial"}, "%v", err)
			}
		}
	}
	owner := map[string]string{} // container name -> service
	for _, s := range sortedKeys(inv.Services) {
		svc := inv.Services[s]
		p := []string{"services", s}
		if len(svc.Containers) == 0 {
			bad(append(p, "containers"), "is empty; list the service's containers with name and image")
		}
		for i, c := range svc.Containers {
			cp := append(slices.Clone(p), "containers", strconv.Itoa(i))
			if c.Name == "" {
				bad(append(cp, "name"), "is missing; give the container name as on the node")
			} else if o, dup := owner[c.Name]; dup {
				bad(append(cp, "name"), "container %q is already declared by service %s; container names are unique per node", c.Name, o)
			} else {
				owner[c.Name] = s
			}
			if c.Image == "" {
				bad(append(cp, "image"), "is missing; give the image the container runs now")
			}
			for j, v := range c.Volumes {
				if !strings.Contains(v, ":") {
					bad(append(cp, "volumes", strconv.Itoa(j)), "%q is not source:destination[:mode]", v)
				}
			}
			if c.Health != nil {
				if c.Health.Cmd == "" {
					bad(append(cp, "health", "cmd"), "is missing; give the probe command")
				}
				for _, f := range [...]struct{ name, value string }{{"interval", c.Health.Interval}, {"timeout", c.Health.Timeout}} {
					if _, err := ParseDuration(f.value); err != nil {
						bad(append(cp, "health", f.name), "%v", err)
					}
				}
			}
		}
		switch svc.Strategy {
		case "", "stop-first", "start-first":
		default:
			bad(append(p, "strategy"), "%q is not stop-first or start-first", svc.Strategy)
		}
		if svc.MaxUnavailable != "" {
			if _, err := ParseAmount(svc.MaxUnavailable); err != nil {
				bad(append(p, "max_unavailable"), "%v", err)
			}
		}
		if _, err := ParseDuration(svc.MaxInterruption); err != nil {
			bad(append(p, "max_interruption"), "%v", err)
		}
		for i, d := range svc.DependsOn {
			if _, ok := inv.Services[d]; !ok {
				bad(append(p, "depends_on", strconv.Itoa(i)), "service %q is not defined under services", d)
			} else if d == s {
				bad(append(p, "depends_on", strconv.Itoa(i)), "a service cannot depend on itself")
			}
		}
		if cycle := dependencyCycle(inv.Services, s); cycle != nil {
			bad(append(p, "depends_on"), "dependency cycle %s; remove one of these dependencies", strings.Join(cycle, " → "))
		}
		if db := svc.Database; db != nil {
			switch db.Driver {
			case "sqlite", "postgres", "mysql", "mariadb":
			default:
				bad(append(p, "database", "driver"), "%q is not sqlite, postgres, mysql or mariadb", db.Driver)
			}
			if db.URL == "" {
				bad(append(p, "database", "url"), "is missing; give a file path (sqlite) or URL (postgres://..., mysql://...)")
			}
			switch c := db.Commands; {
			case c == nil && db.Migrations == "":
				bad(append(p, "database", "migrations"), "is missing; give the migrations path inside the image, or commands")
			case c != nil && db.Migrations != "":
				bad(append(p, "database", "commands"), "is set together with migrations; a database migrates with SQL files or with commands, not both")
			case c != nil && len(c.Expand)+len(c.Migrate)+len(c.OnlineData)+len(c.Contract) == 0:
				bad(append(p, "database", "commands"), "names no command; give expand, migrate, online_data or contract")
			case c != nil && c.Timeout != "":
				if d, err := time.ParseDuration(c.Timeout); err != nil || d <= 0 {
					bad(append(p, "database", "commands", "timeout"), "%q is not a positive duration like 10m", c.Timeout)
				}
			}
			if c := db.Commands; c != nil {
				for i, kv := range c.Env {
					// The env travels in the migration request on the bus:
					// secrets belong in the mounted config files.
					if k, _, _ := strings.Cut(kv, "="); secretEnv.MatchString(k) {
						bad(append(p, "database", "commands", "env", strconv.Itoa(i)), "%s looks like a secret; the command's env travels in events, so put it in the config directory the command mounts (as Kolla does)", k)
					}
				}
			}
			if db.Version < 0 {
				bad(append(p, "database", "version"), "%d is negative", db.Version)
			}
			switch db.Fence {
			case "", "none":
			case "connect", "read-only":
				if db.Driver != "postgres" {
					bad(append(p, "database", "fence"), "%s fences PostgreSQL databases only; leave fence out for %s", db.Fence, db.Driver)
				}
			default:
				bad(append(p, "database", "fence"), "%q is not connect, read-only or none", db.Fence)
			}
			switch db.SnapshotMethod {
			case "", "auto":
			case "template", "dump", "backup":
				mysql := db.Driver == "mysql" || db.Driver == "mariadb"
				switch {
				case db.Driver == "postgres" && db.SnapshotMethod == "backup":
					bad(append(p, "database", "snapshot_method"), "backup is a MariaDB/MySQL method; PostgreSQL's are auto, template and dump")
				case mysql && db.SnapshotMethod == "template":
					bad(append(p, "database", "snapshot_method"), "template is a PostgreSQL method; MariaDB/MySQL's are auto (default), dump and backup")
				case db.Driver != "postgres" && !mysql:
					bad(append(p, "database", "snapshot_method"), "%q: the %s driver has one method: leave snapshot_method out", db.SnapshotMethod, db.Driver)
				}
			default:
				bad(append(p, "database", "snapshot_method"), "%q is not auto, template, dump or backup", db.SnapshotMethod)
			}
		}
	}
	return errors.Join(errs...)
}

// Amount is a count or a percentage, as in max_unavailable: 2 or 25%.
type Amount struct {
	// N is the count, or the percent when Percent is true.
	N int
	// Percent says N is a percentage.
	Percent bool
}

// ParseAmount reads "3" or "25%".
func ParseAmount(s string) (Amount, error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return Amount{}, fmt.Errorf("%q is not a percentage between 1%% and 100%%", s)
		}
		return Amount{N: n, Percent: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Amount{}, fmt.Errorf("%q is not a positive count or a percentage such as 25%%", s)
	}
	return Amount{N: n}, nil
}

// Of resolves the amount against a total: a percentage rounds down but is
// never below 1, so every service can make progress.
func (a Amount) Of(total int) int {
	n := a.N
	if a.Percent {
		n = total * a.N / 100
	}
	return max(1, n)
}

// String renders the amount as written.
func (a Amount) String() string {
	if a.Percent {
		return strconv.Itoa(a.N) + "%"
	}
	return strconv.Itoa(a.N)
}

// DefaultSerial is TripleO's default for a role: computes 25%, others 1.
func DefaultSerial(role string) Amount {
	if strings.Contains(strings.ToLower(role), "compute") {
		return Amount{N: 25, Percent: true}
	}
	return Amount{N: 1}
}

// Serial returns a role's serial, or its default.
func (inv *Inventory) Serial(role string) Amount {
	if a, err := ParseAmount(inv.Roles[role].Serial); err == nil {
		return a
	}
	return DefaultSerial(role)
}

// ServicesOf returns the services a node runs: the union of its roles', sorted.
func (inv *Inventory) ServicesOf(node string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range inv.Nodes[node].Roles {
		for _, s := range inv.Roles[r].Services {
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}

// NodeNames returns the node names, sorted.
func (inv *Inventory) NodeNames() []string { return sortedKeys(inv.Nodes) }

// ParseDuration parses an optional, non-negative duration of an inventory
// or release file: "" is 0.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(cmp.Or(s, "0s"))
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration like 5s or 1m30s", s)
	}
	return d, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// Marshal renders an inventory as YAML, keys sorted, so output is stable.
func Marshal(inv *Inventory) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(inv); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	return b.Bytes(), nil
}

// Placed is one container the inventory places on a node.
type Placed struct {
	// Service is the service the container belongs to.
	Service string
	Container
}

// ContainersOf returns the containers the inventory places on node: those
// of every service its roles run, in service then update order, each with
// the image the node runs (its images override, or the service's).
func (inv *Inventory) ContainersOf(node string) []Placed {
	var out []Placed
	ov := inv.Nodes[node].Images
	for _, s := range inv.ServicesOf(node) {
		for _, c := range inv.Services[s].Containers {
			if img, ok := ov[c.Name]; ok {
				c.Image = img
			}
			out = append(out, Placed{Service: s, Container: c})
		}
	}
	return out
}

// dependencyCycle returns the cycle of depends_on that starts and ends at
// service from, or nil when from is on none. Each cycle is reported once,
// at its service that sorts first.
func dependencyCycle(services map[string]Service, from string) []string {
	var path []string
	onPath := map[string]bool{}
	done := map[string]bool{}
	var walk func(s string) []string
	walk = func(s string) []string {
		if s == from && len(path) > 0 {
			return append(slices.Clone(path), s)
		}
		if onPath[s] || done[s] {
			return nil
		}
		onPath[s] = true
		path = append(path, s)
		for _, d := range services[s].DependsOn {
			if d == s {
				continue // reported on its own
			}
			if c := walk(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		onPath[s], done[s] = false, true
		return nil
	}
	c := walk(from)
	if c == nil {
		return nil
	}
	for _, s := range c {
		if s < from {
			return nil // reported at the service that sorts first
		}
	}
	return c
}
