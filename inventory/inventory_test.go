package inventory_test

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/inventory"
)

func TestLoadComposableRoles(t *testing.T) {
	inv, err := inventory.Load("testdata/small.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(inv.ServicesOf("cmp01"), ","); got != "nova-compute,nova-libvirt" {
		t.Errorf("services of cmp01 = %s", got)
	}
	if got := strings.Join(inv.ServicesOf("ctl02"), ","); got != "keystone,mariadb,nova-api" {
		t.Errorf("services of ctl02 = %s", got)
	}
	if got := inv.Serial("compute").Of(8); got != 2 {
		t.Errorf("compute serial of 8 = %d, want 2 (25%%)", got)
	}
	if got := inv.Serial("controller").Of(3); got != 1 {
		t.Errorf("controller serial of 3 = %d, want 1", got)
	}
	if !inv.Services["nova-libvirt"].Containers[0].WorkloadHost {
		t.Error("nova_libvirt is not a workload host")
	}
	// A node's images override what its services' containers run.
	for node, want := range map[string]string{"cmp03": "reg/nova-compute:2", "cmp02": "reg/nova-compute:1"} {
		for _, c := range inv.ContainersOf(node) {
			if c.Name == "nova_compute" && c.Image != want {
				t.Errorf("%s: ContainersOf gives nova_compute %s, want %s", node, c.Image, want)
			}
		}
	}
}

func TestParseNamesFileLineAndField(t *testing.T) {
	const base = "nodes:\n  n1: {roles: [r]}\nroles:\n  r: {services: [web]}\nservices:\n  web:\n    containers:\n      - {name: web, image: web:1}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"not yaml", "nodes: [", []string{"i.yaml", "not valid YAML"}},
		{"unknown field", strings.Replace(base, "image: web:1", "imgae: web:1", 1), []string{"i.yaml:8: field imgae is not known here"}},
		{"dependency cycle", strings.Replace(strings.Replace(base, "  web:\n    containers:", "  web:\n    depends_on: [api]\n    containers:", 1), "services:\n  web:", "services:\n  api:\n    depends_on: [web]\n    containers: [{name: api, image: api:1}]\n  web:", 1),
			[]string{"i.yaml:7: services.api.depends_on: dependency cycle api → web → api; remove one of these dependencies"}},
		{"undefined role", strings.Replace(base, "roles: [r]", "roles: [r, db]", 1), []string{`i.yaml:2: nodes.n1.roles[1]: role "db" is not defined`}},
		{"undefined service", strings.Replace(base, "services: [web]", "services: [web, api]", 1), []string{`i.yaml:4: roles.r.services[1]: service "api" is not defined`}},
		{"everything wrong at once",
			"nodes:\n  n1: {roles: []}\nroles:\n  r: {services: [web], serial: lots}\nservices:\n  web:\n    max_unavailable: 0\n    max_interruption: soon\n    strategy: sideways\n    depends_on: [web, nope]\n    database: {driver: oracle, migrations: /m}\n    containers:\n      - {name: web}\n      - {name: web, image: x, volumes: [novolume], health: {interval: often}}\n",
			[]string{
				"i.yaml:2: nodes.n1.roles: is empty",
				`i.yaml:4: roles.r.serial: "lots" is not`,
				`i.yaml:7: services.web.max_unavailable: "0" is not a positive count`,
				`i.yaml:8: services.web.max_interruption: "soon"`,
				`i.yaml:9: services.web.strategy: "sideways"`,
				"i.yaml:10: services.web.depends_on[0]: a service cannot depend on itself",
				`i.yaml:10: services.web.depends_on[1]: service "nope"`,
				`i.yaml:11: services.web.database.driver: "oracle"`,
				"i.yaml:11: services.web.database.url: is missing",
				"i.yaml:13: services.web.containers[0].image: is missing",
				`i.yaml:14: services.web.containers[1].name: container "web" is already declared`,
				`i.yaml:14: services.web.containers[1].volumes[0]: "novolume"`,
				"i.yaml:14: services.web.containers[1].health.cmd: is missing",
				`i.yaml:14: services.web.containers[1].health.interval: "often"`,
			}},
		{"no nodes", "roles: {}\n", []string{"i.yaml:1: nodes: is empty"}},
		{"node image of a container it does not run", strings.Replace(base, "n1: {roles: [r]}", "n1: {roles: [r], images: {wbe: web:2}}", 1),
			[]string{`i.yaml:2: nodes.n1.images.wbe: container "wbe" is not one node n1 runs (its roles' services' containers: web)`}},
		{"empty node image", strings.Replace(base, "n1: {roles: [r]}", "n1: {roles: [r], images: {web: \"\"}}", 1),
			[]string{"i.yaml:2: nodes.n1.images.web: is empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inventory.Parse("i.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in    string
		total int
		want  int
		bad   bool
	}{
		{"1", 10, 1, false}, {"3", 2, 3, false}, {"25%", 8, 2, false}, {"25%", 3, 1, false},
		{"100%", 7, 7, false}, {"0", 1, 0, true}, {"101%", 1, 0, true}, {"x", 1, 0, true}, {"-2", 1, 0, true},
	}
	for _, tc := range tests {
		a, err := inventory.ParseAmount(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseAmount(%q) err = %v, want bad=%v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && a.Of(tc.total) != tc.want {
			t.Errorf("%q of %d = %d, want %d", tc.in, tc.total, a.Of(tc.total), tc.want)
		}
	}
}

func TestParseAcceptsEveryMigratorDriver(t *testing.T) {
	const base = "nodes:\n  n1: {roles: [r]}\nroles:\n  r: {services: [web]}\nservices:\n  web:\n    database: {driver: DRIVER, url: URL, migrations: /m}\n    containers:\n      - {name: web, image: web:1}\n"
	for _, tc := range []struct{ driver, url string }{
		{"sqlite", "/var/lib/web.db"},
		{"postgres", "postgres://web@db:5432/web"},
		{"mysql", "mysql://web@db:3306/web"},
		{"mariadb", "mysql://web@db:3306/web"},
	} {
		t.Run(tc.driver, func(t *testing.T) {
			y := strings.NewReplacer("DRIVER", tc.driver, "URL", tc.url).Replace(base)
			inv, err := inventory.Parse("i.yaml", []byte(y))
			if err != nil {
				t.Fatalf("driver %s refused: %v", tc.driver, err)
			}
			if got := inv.Services["web"].Database.Driver; got != tc.driver {
				t.Errorf("driver = %q, want %q", got, tc.driver)
			}
		})
	}
}

func TestParseDatabaseCommands(t *testing.T) {
	const base = "nodes:\n  n1: {roles: [r]}\nroles:\n  r: {services: [web]}\nservices:\n  web:\n    database: DB\n    containers:\n      - {name: web, image: web:1}\n"
	for _, tc := range []struct{ name, db, want string }{
		{"commands", "{driver: mariadb, url: 'mysql://k@db/k', commands: {expand: [keystone-manage, db_sync, --expand], timeout: 10m}}", ""},
		{"neither", "{driver: mariadb, url: 'mysql://k@db/k'}", "services.web.database.migrations: is missing; give the migrations path inside the image, or commands"},
		{"both", "{driver: mariadb, url: 'mysql://k@db/k', migrations: /m, commands: {expand: [x]}}", "services.web.database.commands: is set together with migrations"},
		{"empty", "{driver: mariadb, url: 'mysql://k@db/k', commands: {network: host}}", "services.web.database.commands: names no command"},
		{"secret in env", "{driver: mariadb, url: 'mysql://k@db/k', commands: {expand: [x], env: [KOLLA_CONFIG_STRATEGY=COPY_ALWAYS, DB_PASSWORD=x]}}", "services.web.database.commands.env[1]: DB_PASSWORD looks like a secret"},
		{"bad timeout", "{driver: mariadb, url: 'mysql://k@db/k', commands: {expand: [x], timeout: soon}}", `services.web.database.commands.timeout: "soon" is not a positive duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inventory.Parse("i.yaml", []byte(strings.Replace(base, "DB", tc.db, 1)))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A database's fence and snapshot_method are per database: accepted for
// PostgreSQL, refused with the field and the fix otherwise.
func TestParseDatabaseFenceAndSnapshotMethod(t *testing.T) {
	const base = "nodes:\n  n1: {roles: [r]}\nroles:\n  r: {services: [web]}\nservices:\n  web:\n    database: {driver: DRIVER, url: URL, migrations: /m, EXTRA}\n    containers:\n      - {name: web, image: web:1}\n"
	for _, tc := range []struct{ driver, url, extra, want string }{
		{"postgres", "postgres://web@db:5432/web", "fence: read-only, snapshot_method: dump", ""},
		{"postgres", "postgres://web@db:5432/web", "fence: connect, snapshot_method: template", ""},
		{"postgres", "postgres://web@db:5432/web", "fence: none, snapshot_method: auto", ""},
		{"postgres", "postgres://web@db:5432/web", "fence: readonly", `i.yaml:7: services.web.database.fence: "readonly" is not connect, read-only or none`},
		{"sqlite", "/var/lib/web.db", "fence: read-only", "i.yaml:7: services.web.database.fence: read-only fences PostgreSQL databases only; leave fence out for sqlite"},
		{"mysql", "mysql://web@db:3306/web", "fence: none, snapshot_method: backup", ""},
		{"mariadb", "mysql://web@db:3306/web", "fence: none, snapshot_method: dump", ""},
		{"mysql", "mysql://web@db:3306/web", "snapshot_method: template", `services.web.database.snapshot_method: template is a PostgreSQL method; MariaDB/MySQL's are auto (default), dump and backup`},
		{"postgres", "postgres://web@db:5432/web", "snapshot_method: backup", `services.web.database.snapshot_method: backup is a MariaDB/MySQL method`},
		{"sqlite", "/var/lib/web.db", "snapshot_method: dump", `services.web.database.snapshot_method: "dump": the sqlite driver has one method: leave snapshot_method out`},
		{"postgres", "postgres://web@db:5432/web", "snapshot_method: copy", `services.web.database.snapshot_method: "copy" is not auto, template, dump or backup`},
	} {
		t.Run(tc.driver+" "+tc.extra, func(t *testing.T) {
			y := strings.NewReplacer("DRIVER", tc.driver, "URL", tc.url, "EXTRA", tc.extra).Replace(base)
			inv, err := inventory.Parse("i.yaml", []byte(y))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if d := inv.Services["web"].Database; "fence: "+d.Fence+", snapshot_method: "+d.SnapshotMethod != tc.extra {
					t.Errorf("database = %+v, want %s", d, tc.extra)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
