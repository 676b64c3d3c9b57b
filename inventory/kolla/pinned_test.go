package kolla_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
)

// imageOn returns the image container runs on node, as the planner reads
// it (the node's images override, else the service's).
func imageOn(t *testing.T, inv *inventory.Inventory, node, container string) string {
	t.Helper()
	for _, c := range inv.ContainersOf(node) {
		if c.Name == container {
			return c.Image
		}
	}
	t.Fatalf("node %s runs no container %s", node, container)
	return ""
}

func readGlobals(t *testing.T, path string) kolla.Options {
	t.Helper()
	g, lines, err := kolla.ReadGlobals(path)
	if err != nil {
		t.Fatal(err)
	}
	return kolla.Options{Globals: g, GlobalsLines: lines, GlobalsFile: path}
}

// TestPinnedImages imports a cloud pinned the ways kolla-ansible operators
// pin it: per project and per container in globals.yml, a container's
// image or whole reference, a Jinja chain, a tag in [compute:vars], a tag
// on one host's line, and globals.yml beating the inventory's vars.
func TestPinnedImages(t *testing.T) {
	inv, rep := convertWith(t, "testdata/pinned", readGlobals(t, "testdata/pinned-globals.yml"))
	base, def := "registry.example.net:4000/kolla/", ":2025.1-ubuntu-noble"
	tests := []struct{ name, node, container, want string }{
		{"per-container tag", "control01", "nova_api", base + "nova-api:2025.1-api-p1"},
		{"rest of the project unpinned", "control02", "nova_scheduler", base + "nova-scheduler" + def},
		{"per-project tag", "control01", "neutron_server", base + "neutron-server:2025.1-neutron-p2"},
		{"per-project tag on computes", "compute03", "neutron_openvswitch_agent", base + "neutron-openvswitch-agent:2025.1-neutron-p2"},
		{"another project keeps openstack_tag", "compute01", "openvswitch_vswitchd", base + "openvswitch-vswitchd" + def},
		{"per-container image", "control01", "horizon", "registry.example.net:4000/branding/horizon" + def},
		{"whole reference", "control02", "glance_api", "quay.io/openstack.kolla/glance-api:2025.1-rocky-10"},
		{"jinja chain", "control01", "keystone_ssh", base + "keystone-ssh:2025.1.3-ubuntu-noble"},
		{"jinja chain through keystone_service_tag", "control02", "keystone", base + "keystone:2025.1.3-ubuntu-noble"},
		{"globals beat a group var and a host var", "control01", "rabbitmq", base + "rabbitmq:2025.1-rmq-globals"},
		{"globals beat a group var", "control02", "rabbitmq", base + "rabbitmq:2025.1-rmq-globals"},
		{"host var", "control02", "mariadb", base + "mariadb-server:2025.1-db-host"},
		{"host var on another host only", "control01", "mariadb", base + "mariadb-server" + def},
		{"host var on one compute", "compute02", "nova_compute", base + "nova-compute:2025.1-hotfix3"},
		{"other computes", "compute01", "nova_compute", base + "nova-compute" + def},
		{"group var for compute only", "compute03", "nova_libvirt", base + "nova-libvirt:2025.1-libvirt10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := imageOn(t, inv, tc.node, tc.container); got != tc.want {
				t.Errorf("%s on %s runs %s, want %s", tc.container, tc.node, got, tc.want)
			}
		})
	}
	// The service keeps what most of its hosts run; the others are
	// overridden per node, which the planner reads.
	if got := inv.Services["nova-compute"].Containers[0].Image; got != base+"nova-compute"+def {
		t.Errorf("nova-compute service image %s, want the unpinned one", got)
	}
	if got := inv.Nodes["compute02"].Images; !maps.Equal(got, map[string]string{"nova_compute": base + "nova-compute:2025.1-hotfix3"}) {
		t.Errorf("compute02 images %v, want nova_compute pinned", got)
	}
	if got := inv.Nodes["compute01"].Images; got != nil {
		t.Errorf("compute01 images %v, want none", got)
	}
	// A tie between two controllers goes to the first host's image.
	if got := inv.Services["mariadb"].Containers[0].Image; got != base+"mariadb-server"+def {
		t.Errorf("mariadb service image %s, want control01's", got)
	}
	if want := []string{"control02/mariadb", "compute02/nova_compute"}; !slices.Equal(rep.Pinned, want) {
		t.Errorf("report.Pinned %v, want %v", rep.Pinned, want)
	}
	// The import is a valid inventory as written to a file.
	raw, err := inventory.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	back, err := inventory.Parse("pinned.yaml", raw)
	if err != nil {
		t.Fatalf("imported inventory does not validate: %v\n%s", err, raw)
	}
	if got := imageOn(t, back, "compute02", "nova_compute"); got != base+"nova-compute:2025.1-hotfix3" {
		t.Errorf("after a round trip compute02 runs %s", got)
	}
}

// TestImageVarPrecedence checks Ansible's precedence, as kolla-ansible
// runs it, variable by variable: role defaults < the inventory's group
// vars (parents before children) < kolla-ansible's group_vars/all < the
// inventory's host vars < globals.yml (extra vars) < --registry/--tag.
// A more specific variable wins over a more general one wherever each is
// set: a host's nova_compute_tag beats globals.yml's nova_tag.
func TestImageVarPrecedence(t *testing.T) {
	const q = "quay.io/openstack.kolla/nova-compute:"
	tests := []struct {
		name, ini string
		globals   map[string]string
		opts      kolla.Options
		want      map[string]string // host -> nova_compute image
	}{
		{"defaults", "[compute]\nc1\n", nil, kolla.Options{}, map[string]string{"c1": q + "2025.2-rocky-10"}},
		{"host var beats group var",
			"[compute]\nc1 nova_compute_tag=h\nc2\n[compute:vars]\nnova_compute_tag=g\n", nil, kolla.Options{},
			map[string]string{"c1": q + "h", "c2": q + "g"}},
		{"child group vars beat parent group vars",
			"[cell1]\nc1\n[cell2]\nc2\n[compute:children]\ncell1\ncell2\n[compute:vars]\nnova_tag=parent\n[cell1:vars]\nnova_tag=child\n", nil, kolla.Options{},
			map[string]string{"c1": q + "child", "c2": q + "parent"}},
		{"group vars lose to kolla's group_vars/all, host vars beat it",
			"[compute]\nc1 openstack_tag=host\nc2\n[all:vars]\nopenstack_tag=inventory-group\n", nil, kolla.Options{},
			map[string]string{"c1": q + "host", "c2": q + "2025.2-rocky-10"}},
		{"globals beat host vars of the same name",
			"[compute]\nc1 nova_tag=host\n", map[string]string{"nova_tag": "globals"}, kolla.Options{},
			map[string]string{"c1": q + "globals"}},
		{"a host's container tag beats globals' project tag",
			"[compute]\nc1 nova_compute_tag=host\nc2\n", map[string]string{"nova_tag": "globals"}, kolla.Options{},
			map[string]string{"c1": q + "host", "c2": q + "globals"}},
		{"inventory vars template globals",
			"[compute]\nc1 nova_compute_tag=\"{{ nova_tag }}-hf1\"\n", map[string]string{"nova_tag": "2025.1-p4"}, kolla.Options{},
			map[string]string{"c1": q + "2025.1-p4-hf1"}},
		{"--tag replaces openstack_tag, pins stay",
			"[compute]\nc1\nc2 nova_compute_tag=pinned\n", nil, kolla.Options{Tag: "flag"},
			map[string]string{"c1": q + "flag", "c2": q + "pinned"}},
		{"--registry replaces docker_image_url",
			"[compute]\nc1\n", map[string]string{"docker_registry": "r.example"}, kolla.Options{Registry: "mirror.example/kolla/"},
			map[string]string{"c1": "mirror.example/kolla/nova-compute:2025.2-rocky-10"}},
		{"empty docker_registry drops the host",
			"[compute]\nc1\n", map[string]string{"docker_registry": "", "docker_namespace": "kolla"}, kolla.Options{},
			map[string]string{"c1": "kolla/nova-compute:2025.2-rocky-10"}},
		{"openstack_tag_suffix and kolla_base_distro",
			"[compute]\nc1\n", map[string]string{"kolla_base_distro": "debian", "openstack_tag_suffix": "-aarch64"}, kolla.Options{},
			map[string]string{"c1": q + "2025.2-debian-bookworm-aarch64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := kolla.Parse("t", strings.NewReader(tc.ini))
			if err != nil {
				t.Fatal(err)
			}
			opts := tc.opts
			if tc.globals != nil {
				opts.Globals, opts.GlobalsFile = tc.globals, "g.yml"
			}
			inv, _, err := kolla.Convert(f, opts)
			if err != nil {
				t.Fatal(err)
			}
			for h, want := range tc.want {
				if got := imageOn(t, inv, h, "nova_compute"); got != want {
					t.Errorf("%s runs %s, want %s", h, got, want)
				}
			}
		})
	}
}

// TestImageVarErrors: what the resolver cannot or must not evaluate is an
// error naming the variable, where it is set and the fix; nothing is
// guessed.
func TestImageVarErrors(t *testing.T) {
	tests := []struct {
		name, ini, globals string
		want               []string
	}{
		{"cycle names both variables and their lines", "[compute]\nc1\n",
			"---\nnova_tag: \"{{ nova_compute_tag }}\"\nnova_compute_tag: \"{{ nova_tag }}\"\n",
			[]string{"refer to each other in a cycle", "nova_compute_tag at g.yml:3", "nova_tag at g.yml:2", "set one of them to a plain value"}},
		{"self reference", "[compute]\nc1\n",
			"---\nopenstack_tag: \"{{ openstack_tag }}-x\"\n",
			[]string{"openstack_tag → openstack_tag", "g.yml:2"}},
		{"unknown variable names it and the line", "[compute]\nc1\n",
			"---\nenable_cinder: \"no\"\nnova_tag: \"{{ nova_release }}-ubuntu-noble\"\n",
			[]string{"g.yml:3: nova_tag refers to nova_release, which is not set", "set nova_release in globals.yml or write the value itself"}},
		{"filter refused", "[compute]\nc1\n",
			"---\nopenstack_tag: \"{{ openstack_tag | default('x') }}\"\n",
			[]string{"g.yml:2: openstack_tag", "the filter | default('x')", "cutover does not evaluate", "write the value itself in openstack_tag"}},
		{"filter refused before an unknown variable is looked up", "[compute]\nc1\n",
			"---\nnova_tag: \"{{ missing }}-{{ openstack_release | lower }}\"\n",
			[]string{"g.yml:2: nova_tag", "the filter | lower"}},
		{"conditional refused", "[compute]\nc1\n",
			"---\nnova_tag: \"{{ 'a' if openstack_release else 'b' }}\"\n",
			[]string{"g.yml:2: nova_tag", "a conditional (if/else)"}},
		{"statement refused", "[compute]\nc1\n",
			"---\nnova_tag: \"{% if true %}a{% endif %}\"\n",
			[]string{"g.yml:2: nova_tag", "a Jinja statement"}},
		{"unclosed braces", "[compute]\nc1\n",
			"---\nnova_tag: \"{{ openstack_release\"\n",
			[]string{"g.yml:2: nova_tag", "without closing it"}},
		{"empty tag is no image", "[compute]\nc1\n",
			"---\nnova_compute_tag: \"\"\n",
			[]string{"nova_compute_image_full is \"quay.io/openstack.kolla/nova-compute:\"", "not an image reference"}},
		{"inventory group var names its line", "[compute]\nc1\n\n[compute:vars]\nnova_compute_tag={{ nova_hotfix }}\n",
			"---\n",
			[]string{"t:5 ([compute:vars]): nova_compute_tag refers to nova_hotfix"}},
		{"inventory host var names its line and host", "[compute]\nc1 nova_compute_tag=\"{{ x | upper }}\"\n",
			"---\n",
			[]string{"t:2 (host vars): nova_compute_tag", "on host c1", "the filter | upper"}},
		{"unknown distro", "[compute]\nc1\n",
			"---\nkolla_base_distro: arch\n",
			[]string{"g.yml:2: kolla_base_distro \"arch\"", "set kolla_base_distro_version or openstack_tag"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.yml")
			if err := os.WriteFile(path, []byte(tc.globals), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := readGlobals(t, path)
			opts.GlobalsFile = "g.yml"
			f, err := kolla.Parse("t", strings.NewReader(tc.ini))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = kolla.Convert(f, opts)
			if err == nil {
				t.Fatal("converted; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// TestReadGlobalsKeepsValuesAsWritten: a release such as 2025.10 is not
// read as the number 2025.1, booleans become yes/no, lines are kept.
func TestReadGlobalsKeepsValuesAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "globals.yml")
	if err := os.WriteFile(path, []byte("---\n# comment\nopenstack_release: 2025.10\nenable_cinder: true\nenable_heat: no\ndocker_registry:\nnova_extra: [a, b]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, lines, err := kolla.ReadGlobals(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"openstack_release": "2025.10", "enable_cinder": "yes", "enable_heat": "no"}
	if !maps.Equal(g, want) {
		t.Errorf("globals %v, want %v", g, want)
	}
	if lines["openstack_release"] != 3 || lines["enable_heat"] != 5 {
		t.Errorf("lines %v, want openstack_release at 3 and enable_heat at 5", lines)
	}
	if err := os.WriteFile(path, []byte("- a\n- b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := kolla.ReadGlobals(path); err == nil || !strings.Contains(err.Error(), "not a mapping") {
		t.Errorf("err = %v, want a list refused", err)
	}
}

// TestTableImageVars: the role defaults the table describes are
// consistent (no variable defined two ways) and name kolla's variables
// where they differ from the container name.
func TestTableImageVars(t *testing.T) {
	f, err := kolla.Parse("t", strings.NewReader("[control]\nc1\n[keystone:children]\ncontrol\n[valkey:children]\ncontrol\n[ironic-tftp:children]\ncontrol\n"))
	if err != nil {
		t.Fatal(err)
	}
	g := map[string]string{"enable_valkey": "yes", "enable_ironic": "yes",
		"keystone_service_tag": "ks", "keystone_tag": "project",
		"valkey_tag": "v", "valkey_sentinel_tag": "ignored by kolla too",
		"ironic_pxe_tag": "pxe"}
	inv, _, err := kolla.Convert(f, kolla.Options{Globals: g, GlobalsFile: "g.yml"})
	if err != nil {
		t.Fatal(err)
	}
	q := "quay.io/openstack.kolla/"
	for c, want := range map[string]string{
		"keystone": q + "keystone:ks", "keystone_ssh": q + "keystone-ssh:project",
		"valkey_server": q + "valkey-server:v", "valkey_sentinel": q + "valkey-sentinel:v",
		"ironic_tftp": q + "ironic-pxe:pxe",
	} {
		if got := imageOn(t, inv, "c1", c); got != want {
			t.Errorf("%s runs %s, want %s", c, got, want)
		}
	}
}

// TestShadowedGroupVars: a [group:vars] setting kolla-ansible's
// group_vars/all overrides is reported, with its line, not silently lost.
func TestShadowedGroupVars(t *testing.T) {
	f, err := kolla.Parse("t", strings.NewReader("[compute]\nc1\n[all:vars]\nansible_user=kolla\nopenstack_tag=2025.1-x\n[compute:vars]\ndocker_registry=mirror\nnova_tag=kept\n"))
	if err != nil {
		t.Fatal(err)
	}
	inv, rep, err := kolla.Convert(f, kolla.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"openstack_tag (t:5, [all:vars])", "docker_registry (t:7, [compute:vars])"}
	if !slices.Equal(rep.Shadowed, want) {
		t.Errorf("report.Shadowed %v, want %v", rep.Shadowed, want)
	}
	if got := imageOn(t, inv, "c1", "nova_compute"); got != "quay.io/openstack.kolla/nova-compute:kept" {
		t.Errorf("nova_compute runs %s; nova_tag in [compute:vars] should apply", got)
	}
}
