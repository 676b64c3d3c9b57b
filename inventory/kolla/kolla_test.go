package kolla_test

import (
	"bytes"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
)

var update = flag.Bool("update", false, "rewrite golden files")

func convertFile(t *testing.T, path string) (*inventory.Inventory, kolla.Report) {
	t.Helper()
	return convertWith(t, path, kolla.Options{})
}

// TestMultinodeGolden converts a multinode inventory of the kind
// kolla-ansible ships and compares it with the reviewed golden file.
func TestMultinodeGolden(t *testing.T) {
	inv, rep := convertFile(t, "testdata/multinode")
	got, err := inventory.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/multinode.golden.yaml"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("conversion differs from %s (run go test -update and review the diff):\n%s", golden, got)
	}
	// The golden file must itself be a valid inventory.
	if _, err := inventory.Parse(golden, want); err != nil {
		t.Errorf("golden inventory does not validate: %v", err)
	}
	if !slices.Equal(rep.IdleHosts, []string{"localhost"}) || !slices.Equal(rep.UnknownGroups, []string{"blazar-api"}) {
		t.Errorf("report = %+v, want localhost idle and blazar-api unknown", rep)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, ini, want string }{
		{"bad port", "[c]\nctl01:99999\n", "t:2: host \"ctl01:99999\": port \"99999\""},
		{"self child", "[c:children]\nc\n", "t:2: [c:children] lists the group itself"},
		{"unknown child", "[a:children]\nb\n", "t:1: [a:children] names group \"b\", which is not defined"},
		{"bad range", "[c]\nctl[03:01]\n", "t:2: host \"ctl[03:01]\""},
		{"bad var", "[c]\nctl01 ansible_user\n", "t:2: host variable \"ansible_user\""},
		{"bad section", "[c:hosts]\n", "t:1: section [c:hosts]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kolla.Parse("t", strings.NewReader(tc.ini))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCycleIsNamed(t *testing.T) {
	_, err := kolla.Parse("t", strings.NewReader("[h]\nn1\n[a:children]\nb\nh\n[b:children]\na\n[svc:children]\na\n"))
	if err == nil || !strings.Contains(err.Error(), "a → b → a") {
		t.Errorf("err = %v, want the cycle a → b → a named", err)
	}
}

func TestHostRangesAndComments(t *testing.T) {
	f, err := kolla.Parse("t", strings.NewReader("# header\n[c]\nctl[08:10] ansible_user=\"k olla\" # trailing\n; another\nx[1:5:2]\n[svc:children]\nc\n"))
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ := f.Hosts("svc")
	if want := []string{"ctl08", "ctl09", "ctl10", "x1", "x3", "x5"}; !slices.Equal(hosts, want) {
		t.Errorf("hosts = %v, want %v", hosts, want)
	}
	if f.HostVars["ctl09"]["ansible_user"] != "k olla" {
		t.Errorf("vars = %v", f.HostVars["ctl09"])
	}
}

// TestHugeRangeIsRefused: a typo such as compute[1:99999999] is an error
// naming the range, not an exhausted machine; 9,999 hosts still parse.
func TestHugeRangeIsRefused(t *testing.T) {
	if _, err := kolla.Parse("t", strings.NewReader("[c]\ncompute[1:99999999]\n")); err == nil || !strings.Contains(err.Error(), "more than 100000 hosts") {
		t.Errorf("err = %v, want the range refused", err)
	}
	if _, err := kolla.Parse("t", strings.NewReader("[c]\nr[1:400][1:400]\n")); err == nil || !strings.Contains(err.Error(), "more than 100000 hosts") {
		t.Errorf("err = %v, want the product of ranges refused", err)
	}
	many := "[c]\n" + strings.Repeat("r[1:316][1:316]\n", 2) // 99,856 each, the same hosts
	if _, err := kolla.Parse("t", strings.NewReader(many)); err != nil {
		t.Errorf("the same 99,856 hosts twice: %v", err)
	}
	many = "[c]\nr[1:300][1:300]\ns[1:300][1:300]\n" // 90,000 each, 180,000 in all
	if _, err := kolla.Parse("t", strings.NewReader(many)); err == nil || !strings.Contains(err.Error(), "t:3: the inventory lists more than 100000 hosts") {
		t.Errorf("err = %v, want the whole inventory's hosts bounded, naming the line", err)
	}
	f, err := kolla.Parse("t", strings.NewReader("[c]\ncompute[0001:9999]\n[nova:children]\nc\n"))
	if err != nil {
		t.Fatal(err)
	}
	if hosts, _ := f.Hosts("nova"); len(hosts) != 9999 {
		t.Errorf("%d hosts, want 9999", len(hosts))
	}
}

// TestProjectGroupsAreNotUnknownServices: kolla-ansible's multinode has
// project groups ([neutron:children] network) that its service groups list
// as children. Where an operator's inventory keeps the project group but
// points the service groups elsewhere, the project group is still kolla's
// own, not an unknown service; a group nobody knows still is.
func TestProjectGroupsAreNotUnknownServices(t *testing.T) {
	ini := "[control]\ncontrol01\n\n[network]\nnetwork01\n\n[neutron:children]\nnetwork\n\n[nova:children]\ncontrol\n\n" +
		"[neutron-server:children]\ncontrol\n\n[neutron-l3-agent:children]\nnetwork\n\n[nova-api:children]\ncontrol\n\n[mystery:children]\ncontrol\n"
	f, err := kolla.Parse("multinode", strings.NewReader(ini))
	if err != nil {
		t.Fatal(err)
	}
	_, rep, err := kolla.Convert(f, kolla.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.UnknownGroups, []string{"mystery"}) {
		t.Errorf("unknown groups = %v, want [mystery] (neutron and nova are kolla's project groups)", rep.UnknownGroups)
	}
}
