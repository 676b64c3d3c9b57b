package kolla_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
)

func convertWith(t *testing.T, path string, opts kolla.Options) (*inventory.Inventory, kolla.Report) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := kolla.Parse(path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	inv, rep, err := kolla.Convert(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return inv, rep
}

func nodesOf(inv *inventory.Inventory, svc string) []string {
	var out []string
	for _, n := range inv.NodeNames() {
		if slices.Contains(inv.ServicesOf(n), svc) {
			out = append(out, n)
		}
	}
	return out
}

func hostRange(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, prefix+string(rune('0'+i/10))+string(rune('0'+i%10)))
	}
	return out
}

type svcWant struct {
	service    string
	hosts      []string
	containers []string // name=image (image without registry and tag)
}

func checkServices(t *testing.T, inv *inventory.Inventory, base, tag string, tests []svcWant) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.service, func(t *testing.T) {
			svc, ok := inv.Services[tc.service]
			if !ok {
				t.Fatalf("service %s not imported", tc.service)
			}
			if got := nodesOf(inv, tc.service); !slices.Equal(got, tc.hosts) {
				t.Errorf("runs on %v, want %v", got, tc.hosts)
			}
			var got []string
			for _, c := range svc.Containers {
				img, ok := strings.CutPrefix(c.Image, base)
				if !ok || !strings.HasSuffix(img, ":"+tag) {
					t.Errorf("container %s image %s is not %s<image>:%s", c.Name, c.Image, base, tag)
				}
				got = append(got, c.Name+"="+strings.TrimSuffix(img, ":"+tag))
			}
			if !slices.Equal(got, tc.containers) {
				t.Errorf("containers %v, want %v", got, tc.containers)
			}
		})
	}
}

// TestMultinodeServices imports an inventory in upstream multinode syntax
// without globals.yml: nested service groups, services placed by role
// defaults, several containers per service, kolla's image names.
func TestMultinodeServices(t *testing.T) {
	inv, _ := convertWith(t, "testdata/multinode", kolla.Options{})
	ctl := []string{"control01", "control02", "control03"}
	net := []string{"network01", "network02"}
	cmp := hostRange("compute", 1, 20)
	storage := []string{"storagea", "storageb", "storagec"}
	ovs := append(slices.Clone(cmp), net...)
	slices.Sort(ovs)
	iscsi := append(append(slices.Clone(cmp), ctl...), storage...)
	slices.Sort(iscsi)
	checkServices(t, inv, "quay.io/openstack.kolla/", "2025.2-rocky-10", []svcWant{
		{"mariadb", ctl, []string{"mariadb=mariadb-server"}},
		{"memcached", ctl, []string{"memcached=memcached"}},
		{"opensearch", ctl, []string{"opensearch=opensearch"}},
		{"prometheus-mysqld-exporter", ctl, []string{"prometheus_mysqld_exporter=prometheus-mysqld-exporter"}}, // → mariadb → control
		{"haproxy", net, []string{"haproxy=haproxy"}},                                                          // role default: loadbalancer → network
		{"keepalived", net, []string{"keepalived=keepalived"}},                                                 // role default
		{"proxysql", net, []string{"proxysql=proxysql"}},                                                       // role default
		{"manila-share", net, []string{"manila_share=manila-share"}},
		{"letsencrypt-webserver", net, []string{"letsencrypt_webserver=letsencrypt-webserver"}}, // → letsencrypt → loadbalancer → network
		{"ironic-conductor", ctl, []string{"ironic_conductor=ironic-conductor"}},
		{"iscsid", iscsi, []string{"iscsid=iscsid"}}, // compute, storage and ironic → control
		{"openvswitch", ovs, []string{"openvswitch_db=openvswitch-db-server", "openvswitch_vswitchd=openvswitch-vswitchd"}},
		{"keystone", ctl, []string{"keystone_ssh=keystone-ssh", "keystone_fernet=keystone-fernet", "keystone=keystone"}},
		{"valkey", ctl, []string{"valkey_server=valkey-server", "valkey_sentinel=valkey-sentinel"}},
		{"hacluster", ctl, []string{"hacluster_corosync=hacluster-corosync", "hacluster_pacemaker=hacluster-pacemaker"}},
		{"nova-compute", cmp, []string{"nova_compute=nova-compute"}}, // role default: compute
		{"nova-libvirt", cmp, []string{"nova_libvirt=nova-libvirt"}},
		{"nova-ssh", cmp, []string{"nova_ssh=nova-ssh"}},
		{"nova-super-conductor", ctl, []string{"nova_super_conductor=nova-conductor"}},
		{"nova-metadata", ctl, []string{"nova_metadata=nova-api"}},
		{"neutron-openvswitch-agent", ovs, []string{"neutron_openvswitch_agent=neutron-openvswitch-agent"}},
		{"neutron-l3-agent", net, []string{"neutron_l3_agent=neutron-l3-agent"}},
		{"cinder-volume", storage, []string{"cinder_volume=cinder-volume"}},
		{"grafana", []string{"monitoring01"}, []string{"grafana=grafana"}},
		{"prometheus-server", []string{"monitoring01"}, []string{"prometheus_server=prometheus-v2-server"}},
	})
	if !inv.Services["nova-libvirt"].Containers[0].WorkloadHost {
		t.Error("nova_libvirt is not a workload host")
	}
	for name, s := range inv.Services {
		for _, c := range s.Containers {
			if c.WorkloadHost && name != "nova-libvirt" {
				t.Errorf("%s/%s is marked a workload host", name, c.Name)
			}
		}
	}
	if d := inv.Services["keystone"].DependsOn; !slices.Equal(d, []string{"mariadb", "memcached"}) {
		t.Errorf("keystone depends on %v, want mariadb and memcached", d)
	}
	if d := inv.Services["nova-api"].DependsOn; !slices.Contains(d, "keystone") || !slices.Contains(d, "rabbitmq") {
		t.Errorf("nova-api depends on %v, want keystone and rabbitmq among them", d)
	}
	if !inv.Services["iscsid"].PerHost || inv.Services["nova-compute"].PerHost {
		t.Error("iscsid should be per-host, nova-compute not")
	}
	if got := inv.Nodes["monitoring01"].Roles; !slices.Equal(got, []string{"monitoring"}) {
		t.Errorf("monitoring01 roles %v, want [monitoring]", got)
	}
	if got := inv.Nodes["control02"].Roles; !slices.Equal(got, []string{"control"}) {
		t.Errorf("control02 roles %v, want [control]", got)
	}
	if inv.Nodes["network01"].Address != "10.0.0.21" || inv.Nodes["control02"].Vars["ansible_user"] != "kolla" {
		t.Errorf("host vars lost: network01=%+v control02=%+v", inv.Nodes["network01"], inv.Nodes["control02"])
	}
}

// TestOverrides covers what operators add: an ungrouped host before the
// first section, host:port, [group:vars] and [all:vars], a service group
// that lists a host directly, and role names from every group.
func TestOverrides(t *testing.T) {
	inv, rep := convertWith(t, "testdata/overrides", kolla.Options{})
	ctl := []string{"ctl01", "ctl02", "ctl03"}
	checkServices(t, inv, "quay.io/openstack.kolla/", "2025.2-rocky-10", []svcWant{
		{"mariadb", []string{"ctl01"}, []string{"mariadb=mariadb-server"}},
		{"prometheus-mysqld-exporter", []string{"ctl01"}, []string{"prometheus_mysqld_exporter=prometheus-mysqld-exporter"}},
		{"keystone", ctl, []string{"keystone_ssh=keystone-ssh", "keystone_fernet=keystone-fernet", "keystone=keystone"}},
		{"haproxy", ctl, []string{"haproxy=haproxy"}}, // loadbalancer → network → control
		{"nova-libvirt", []string{"cmp01", "cmp02"}, []string{"nova_libvirt=nova-libvirt"}},
		{"openvswitch", []string{"cmp01", "cmp02", "ctl01", "ctl02", "ctl03"}, []string{"openvswitch_db=openvswitch-db-server", "openvswitch_vswitchd=openvswitch-vswitchd"}},
	})
	if got := inv.Nodes["ctl01"].Roles; !slices.Equal(got, []string{"control+mariadb"}) {
		t.Errorf("ctl01 roles %v, want [control+mariadb]", got)
	}
	if got := inv.Nodes["ctl02"].Roles; !slices.Equal(got, []string{"control"}) {
		t.Errorf("ctl02 roles %v, want [control]", got)
	}
	c1, c2 := inv.Nodes["cmp01"], inv.Nodes["cmp02"]
	if c1.Vars["ansible_port"] != "2222" || c1.Address != "192.0.2.31" {
		t.Errorf("cmp01 = %+v, want ansible_port 2222 and address 192.0.2.31", c1)
	}
	if c2.Vars["ansible_user"] != "kolla" || c2.Vars["ansible_become"] != "true" || inv.Nodes["ctl02"].Vars["ansible_user"] != "" {
		t.Errorf("group vars: cmp02=%v ctl02=%v; want compute:vars on computes only and all:vars everywhere", c2.Vars, inv.Nodes["ctl02"].Vars)
	}
	if !slices.Equal(rep.IdleHosts, []string{"deploy01"}) {
		t.Errorf("idle hosts %v, want the ungrouped deploy01", rep.IdleHosts)
	}
	if _, ok := inv.Nodes["deploy01"]; ok {
		t.Error("the ungrouped host runs no service but became a node")
	}
}

// TestAllInOne imports the single-host layout: every core service lands
// on localhost, including the role-default ones.
func TestAllInOne(t *testing.T) {
	inv, _ := convertWith(t, "testdata/all-in-one", kolla.Options{})
	lh := []string{"localhost"}
	for _, s := range []string{"mariadb", "memcached", "rabbitmq", "haproxy", "keepalived", "opensearch", "keystone", "nova-compute", "nova-libvirt", "openvswitch", "neutron-l3-agent", "prometheus-mysqld-exporter"} {
		if got := nodesOf(inv, s); !slices.Equal(got, lh) {
			t.Errorf("%s runs on %v, want localhost", s, got)
		}
	}
	if got := inv.Nodes["localhost"].Roles; !slices.Equal(got, []string{"control+network+compute+storage+monitoring+deployment"}) {
		t.Errorf("localhost roles %v", got)
	}
}

// TestGlobalsSelectServicesAndImages imports with globals.yml: its
// enable_* flags (literal, quoted, Jinja) choose the services, its
// registry, namespace, distro and release make the images.
func TestGlobalsSelectServicesAndImages(t *testing.T) {
	g, err := kolla.LoadGlobals("testdata/globals.yml")
	if err != nil {
		t.Fatal(err)
	}
	inv, rep := convertWith(t, "testdata/multinode", kolla.Options{Globals: g, GlobalsFile: "testdata/globals.yml"})
	ctl := []string{"control01", "control02", "control03"}
	base, tag := "registry.example.net:4000/kolla/", "2025.1-ubuntu-noble"
	checkServices(t, inv, base, tag, []svcWant{
		{"mariadb", ctl, []string{"mariadb=mariadb-server"}},
		{"cinder-volume", []string{"storagea", "storageb", "storagec"}, []string{"cinder_volume=cinder-volume"}},
		{"manila-share", []string{"network01", "network02"}, []string{"manila_share=manila-share"}}, // enable_manila: "{{ enable_cinder | bool }}"
		{"prometheus-mysqld-exporter", ctl, []string{"prometheus_mysqld_exporter=prometheus-mysqld-exporter"}},
	})
	for _, off := range []string{"cinder-backup", "proxysql", "heat-api", "opensearch", "prometheus-elasticsearch-exporter", "hacluster", "valkey", "ironic-conductor"} {
		if _, ok := inv.Services[off]; ok {
			t.Errorf("%s is imported though globals.yml disables it", off)
		}
		if !slices.Contains(rep.Disabled, off) {
			t.Errorf("report.Disabled %v lacks %s", rep.Disabled, off)
		}
	}
	for _, on := range []string{"haproxy", "keepalived", "nova-compute", "nova-libvirt", "openvswitch", "iscsid", "keystone", "neutron-server"} {
		if _, ok := inv.Services[on]; !ok {
			t.Errorf("%s is enabled by default but not imported", on)
		}
	}
	if len(inv.Services) >= 60 {
		t.Errorf("%d services imported with globals.yml; want only the enabled ones", len(inv.Services))
	}
	// Like kolla, a service follows its group whatever else is enabled:
	// iscsid stays on the ironic hosts though ironic is off.
	if !slices.Contains(nodesOf(inv, "iscsid"), "control01") {
		t.Errorf("iscsid on %v, want the ironic hosts (control) among them", nodesOf(inv, "iscsid"))
	}
}

func TestGlobalsErrors(t *testing.T) {
	f, err := kolla.Parse("t", strings.NewReader("[control]\nc1\n[mariadb:children]\ncontrol\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		globals map[string]string
		want    string
	}{
		{"unevaluable flag", map[string]string{"enable_mariadb": "{{ 'yes' if x else 'no' }}"}, "g.yml"},
		{"unknown distro", map[string]string{"kolla_base_distro": "arch"}, "kolla_base_distro \"arch\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := kolla.Convert(f, kolla.Options{Globals: tc.globals, GlobalsFile: "g.yml"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
