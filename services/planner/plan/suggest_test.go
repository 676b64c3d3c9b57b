package plan_test

import (
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/services/planner/plan"
)

func TestSuggest(t *testing.T) {
	nodes := []plan.Node{{Name: "control01", Containers: []plan.Container{
		{Name: "nova_api", Service: "nova-api"}, {Name: "nova_scheduler", Service: "nova-scheduler"},
		{Name: "keystone_ssh", Service: "keystone"}, {Name: "neutron_server", Service: "neutron-server"},
	}}}
	for _, tc := range []struct{ name, want string }{
		{"nova_api", "nova-api"},             // the container's name
		{"Nova-API", "nova-api"},             // case
		{"neutron_server", "neutron-server"}, // container again
		{"keystone-ssh", "keystone"},         // a container, '_' for '-'
		{"nova-shceduler", "nova-scheduler"}, // two edits
		{"keystne", "keystone"},              // one edit
		{"glance-api", ""},                   // nothing close
	} {
		if got := plan.Suggest(tc.name, nodes); got != tc.want {
			t.Errorf("Suggest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestPlanNamesTheServiceATypoMeant: a release naming nova_api against a
// kolla inventory is refused with the service it meant.
func TestPlanNamesTheServiceATypoMeant(t *testing.T) {
	inv := importINI(t, "[control]\ncontrol01\n[compute]\ncompute01\n[nova-api:children]\ncontrol\n")
	rel := patch(inv, "nova-api")
	rel.Services["nova_api"] = rel.Services["nova-api"]
	delete(rel.Services, "nova-api")
	_, err := plan.Build(rel, plan.FromInventory(inv))
	if err == nil || !strings.Contains(err.Error(), "nova_api: did you mean nova-api?") {
		t.Errorf("err = %v, want the typo named with nova-api", err)
	}
}
