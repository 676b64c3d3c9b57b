package plan_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/inventory/kolla"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

// importINI imports a kolla inventory written in upstream syntax.
func importINI(t *testing.T, ini string) *inventory.Inventory {
	t.Helper()
	f, err := kolla.Parse("t", strings.NewReader(ini))
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := kolla.Convert(f, kolla.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// patch releases a new tag of the given services' every container.
func patch(inv *inventory.Inventory, services ...string) plan.Release {
	rel := plan.Release{Name: "patch", Services: map[string]plan.Target{}}
	for _, s := range services {
		tg := plan.Target{Images: map[string]string{}}
		for i, c := range inv.Services[s].Containers {
			if i == 0 {
				tg.Image = c.Image + "-p1"
			}
			tg.Images[c.Name] = c.Image + "-p1"
		}
		rel.Services[s] = tg
	}
	return rel
}

func buildKolla(t *testing.T, inv *inventory.Inventory, rel plan.Release) *plan.Plan {
	t.Helper()
	p, err := plan.Build(rel, plan.FromInventory(inv))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, p)
	return p
}

const computes40 = `
[control]
control[01:03]
[compute]
compute[01:40]
[storage]
storage[01:02]
[mariadb:children]
control
[memcached:children]
control
[rabbitmq:children]
control
[keystone:children]
control
[nova:children]
control
[nova-api:children]
nova
[nova-conductor:children]
nova
[placement-api:children]
control
[ironic:children]
control
[iscsid:children]
compute
storage
ironic
`

// TestKollaComputeVisitedOnce: nova-libvirt, iscsid and nova-compute of a
// compute node change in one visit (one drain), though nova-compute comes
// three dependency levels after them; and no wave drains more than the cap.
func TestKollaComputeVisitedOnce(t *testing.T) {
	for _, tc := range []struct {
		maxDrained string
		cap        int
	}{{"", 2}, {"3", 3}, {"10%", 4}} { // default 5% of 40 = 2
		t.Run("max_drained="+tc.maxDrained, func(t *testing.T) {
			inv := importINI(t, computes40)
			inv.MaxDrained = tc.maxDrained
			p := buildKolla(t, inv, patch(inv, "nova-libvirt", "nova-compute", "iscsid", "keystone", "nova-conductor"))
			visits := map[string]int{}
			most := 0
			for _, w := range p.Rollout() {
				drained := 0
				for _, n := range w.Nodes {
					visits[n.Node]++
					if n.Drain {
						drained++
					}
				}
				if drained > tc.cap {
					t.Errorf("wave %d drains %d nodes, cap is %d", w.Index, drained, tc.cap)
				}
				most = max(most, drained)
			}
			if most != tc.cap {
				t.Errorf("largest drain is %d nodes, want waves to reach the cap %d", most, tc.cap)
			}
			for i := 1; i <= 40; i++ {
				n := fmt.Sprintf("compute%02d", i)
				if visits[n] != 1 {
					t.Errorf("%s is visited %d times, want once", n, visits[n])
				}
			}
		})
	}
}

// TestKollaPerHostDaemonDoesNotThrottle: iscsid (max_unavailable 1: its
// most careful role is storage) on 40 computes rides along with
// nova-compute instead of making 40 waves of one.
func TestKollaPerHostDaemonDoesNotThrottle(t *testing.T) {
	inv := importINI(t, computes40)
	p := buildKolla(t, inv, patch(inv, "nova-compute", "iscsid"))
	var sz []int
	for _, w := range p.Rollout() {
		sz = append(sz, len(w.Nodes))
	}
	// storage: canary, 1 (iscsid alone, max 1); computes: canary 1, then
	// 2, 4, 8, 10 (25% of 40) ...
	if len(sz) > 12 {
		t.Errorf("%d waves %v: iscsid throttles the computes", len(sz), sz)
	}
	if !slices.Contains(sz, 10) {
		t.Errorf("wave sizes %v never reach nova-compute's 25%% of 40", sz)
	}
	for _, s := range p.Services {
		if s.Name == "iscsid" && s.MaxUnavailable != 1 {
			t.Errorf("iscsid max_unavailable = %d, want 1 (storage role)", s.MaxUnavailable)
		}
	}
}

// TestKollaEveryServiceHasACanary: on a cloud where many services share a
// dependency level, each still gets a canary wave of one instance.
func TestKollaEveryServiceHasACanary(t *testing.T) {
	inv := importINI(t, computes40)
	p := buildKolla(t, inv, patch(inv, "mariadb", "memcached", "rabbitmq", "iscsid", "keystone", "nova-api", "nova-conductor", "nova-compute", "nova-libvirt"))
	canaries := map[string]int{}
	for _, w := range p.Rollout() {
		for _, s := range w.CanaryOf {
			canaries[s]++
		}
	}
	for _, s := range p.Services {
		if canaries[s.Name] != 1 {
			t.Errorf("%s has %d canary waves, want 1", s.Name, canaries[s.Name])
		}
	}
}

// TestAllInOneWarns: every replacement on an all-in-one is an outage; the
// plan says so up front, and flags each single-instance service.
func TestAllInOneWarns(t *testing.T) {
	inv := importINI(t, "[control]\nlocalhost ansible_connection=local\n[compute]\nlocalhost\n[mariadb:children]\ncontrol\n[keystone:children]\ncontrol\n[memcached:children]\ncontrol\n")
	p := buildKolla(t, inv, patch(inv, "mariadb", "keystone", "nova-libvirt"))
	if len(p.Warnings) != 1 || !strings.HasPrefix(p.Warnings[0], "all-in-one:") {
		t.Errorf("warnings = %q, want the all-in-one warning", p.Warnings)
	}
	for _, s := range p.Services {
		if !s.Outage || !strings.Contains(s.Reason, "full outage") {
			t.Errorf("%s: outage %v, reason %q; want it flagged", s.Name, s.Outage, s.Reason)
		}
	}
	var txt strings.Builder
	if err := p.Text(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "WARNING: all-in-one: every service runs a single instance on localhost") {
		t.Errorf("text plan lacks the warning:\n%s", txt.String())
	}
	// A release that touches only one node of several is no all-in-one:
	// it flags its single-instance services.
	inv = importINI(t, "[control]\ncontrol01\n[compute]\ncompute01\n[keystone:children]\ncontrol\n")
	p = buildKolla(t, inv, patch(inv, "keystone"))
	if want := []string{"keystone has a single instance: replacing it is a full outage of keystone"}; !slices.Equal(p.Warnings, want) {
		t.Errorf("a release touching control01 of a 2-node inventory: warnings = %q, want %q", p.Warnings, want)
	}
	// A multinode plan flags only its single-instance services.
	inv = importINI(t, computes40+"[monitoring]\nmon01\n[grafana:children]\nmonitoring\n")
	p = buildKolla(t, inv, patch(inv, "grafana", "keystone"))
	if want := []string{"grafana has a single instance: replacing it is a full outage of grafana"}; !slices.Equal(p.Warnings, want) {
		t.Errorf("warnings = %q, want %q", p.Warnings, want)
	}
}
