package kolla_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/inventory/kolla"
)

var longNumber = regexp.MustCompile(`[0-9]{4}`)

// maxFuzzHosts bounds the hosts one fuzz input may list.
const maxFuzzHosts = 2000

// FuzzParseConvert feeds arbitrary INI text and globals to the importer:
// it returns an inventory or an error, never panics or hangs (ranges,
// children cycles, enable_* expressions referring to themselves, image
// variables in globals.yml or the inventory that chain, cycle or use
// Jinja the resolver refuses).
func FuzzParseConvert(f *testing.F) {
	for _, p := range []string{"testdata/multinode", "testdata/all-in-one", "testdata/overrides"} {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(raw), "enable_cinder", "yes")
	}
	f.Add("[a:children]\nb\n[b:children]\na\n", "enable_nova", "enable_nova")
	f.Add("h[1:9:2]:22 x='y z'\n[g]\nh[a:c]\n[g:vars]\nk=v\n", "enable_mariadb", "not enable_mariadb or x == 'y'")
	f.Add("[c]\nn[001:300]\n[x:children]\nc\n\n", "kolla_base_distro", "{{ x }}")
	// Image variables: chains, cycles through the inventory, refusals.
	f.Add("[compute]\nc1 nova_compute_tag=\"{{ nova_tag }}-hf\"\n[compute:vars]\nnova_tag={{ nova_compute_tag }}\n", "openstack_tag", "x")
	f.Add("[compute]\nc1\n[all:vars]\nnova_tag={{ openstack_release ~ '.1' }}\n", "nova_compute_image", "{{ docker_image_url }}nova-compute")
	f.Add("[keystone]\nk1 keystone_tag=\"{{ x | default('y') }}\"\n", "keystone_service_tag", "{{ keystone_tag }}{{ keystone_tag }}")
	f.Fuzz(func(t *testing.T, ini, key, value string) {
		if strings.Count(ini, "[") > 200 || len(ini) > 1<<14 || longNumber.MatchString(ini) {
			t.Skip("bounded input: ranges of thousands of hosts are tested, slowly, elsewhere")
		}
		file, err := kolla.Parse("fuzz", strings.NewReader(ini))
		if err != nil {
			return
		}
		// Two short ranges multiply (r[1:316][1:316] is 99,856 hosts, a
		// few seconds a conversion): the fuzzer would spend its time on
		// one input. Big fleets are converted by TestHugeRangeIsRefused's
		// neighbours and the rehearsal, not here.
		hosts := 0
		for _, g := range file.Groups {
			hosts += len(g.Hosts)
		}
		if hosts > maxFuzzHosts {
			t.Skip("bounded input: more hosts than the fuzzer should convert")
		}
		_, _, _ = kolla.Convert(file, kolla.Options{})
		_, _, _ = kolla.Convert(file, kolla.Options{Globals: map[string]string{key: value}})
	})
}
