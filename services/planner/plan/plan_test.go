package plan_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/inventory"
	"github.com/cutover-dev/cutover/services/planner/manifest"
	"github.com/cutover-dev/cutover/services/planner/plan"
)

var update = flag.Bool("update", false, "rewrite golden files")

func build(t *testing.T, dir string) *plan.Plan {
	t.Helper()
	inv, err := inventory.Load(filepath.Join(dir, "inventory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := manifest.LoadRelease(filepath.Join(dir, "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Build(plan.FromManifest(rel), plan.FromInventory(inv))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, p)
	return p
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test ./plan -update and review the diff):\n%s", path, got)
	}
}

// TestGolden compares text and JSON plans with reviewed files: composable
// placement, dependency order, canary and growing waves, max_unavailable,
// update vs upgrade, reasons, drains, and a kolla multinode inventory.
func TestGolden(t *testing.T) {
	for _, name := range []string{"composable", "maxunavailable", "kolla"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			p := build(t, dir)
			var txt, js bytes.Buffer
			if err := p.Text(&txt); err != nil {
				t.Fatal(err)
			}
			if err := p.JSON(&js); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(dir, "plan.txt"), txt.Bytes())
			golden(t, filepath.Join(dir, "plan.json"), js.Bytes())
			// Deterministic: a second build renders the same bytes.
			var again bytes.Buffer
			_ = build(t, dir).JSON(&again)
			if !bytes.Equal(again.Bytes(), js.Bytes()) {
				t.Error("two builds of the same inputs differ")
			}
		})
	}
}

// checkInvariants asserts, on any plan, what the golden files show on a few:
// no wave holds more than max_unavailable instances of a service; every
// changing container is in exactly one wave; a service's waves come after
// those of every service it depends on; each level starts with a canary.
func checkInvariants(t *testing.T, p *plan.Plan) {
	t.Helper()
	svc := map[string]plan.ServicePlan{}
	for _, s := range p.Services {
		svc[s.Name] = s
	}
	seen := map[string]int{}
	lastWave, firstWave := map[string]int{}, map[string]int{}
	for _, w := range p.Rollout() {
		count := map[string]int{}
		for _, n := range w.Nodes {
			perNode := map[string]bool{}
			carrier := false // a service that is not a per-host daemon
			for _, tg := range n.Targets {
				seen[n.Node+"/"+tg.Container]++
				perNode[tg.Service] = true
				carrier = carrier || !svc[tg.Service].PerHost
			}
			for s := range perNode {
				if svc[s].PerHost && carrier {
					// A per-host daemon riding along with the node's
					// other services: only its first instance counts.
					if _, ok := firstWave[s]; ok {
						continue
					}
				}
				count[s]++
			}
		}
		for s, c := range count {
			if c > svc[s].MaxUnavailable {
				t.Errorf("wave %d takes %d instances of %s down, max_unavailable is %d", w.Index, c, s, svc[s].MaxUnavailable)
			}
			if _, ok := firstWave[s]; !ok {
				firstWave[s] = w.Index
				if c != 1 {
					t.Errorf("first wave of %s (wave %d) has %d instances, want a canary of 1", s, w.Index, c)
				}
				if !w.Canary || !slices.Contains(w.CanaryOf, s) {
					t.Errorf("first wave of %s (wave %d) is not its canary (canary %v of %v)", s, w.Index, w.Canary, w.CanaryOf)
				}
			}
			lastWave[s] = w.Index
		}
	}
	changing := 0
	for _, n := range p.Nodes {
		for _, c := range n.Containers {
			if c.Change {
				changing++
				if seen[n.Node+"/"+c.Container] != 1 {
					t.Errorf("%s/%s is in %d waves, want 1", n.Node, c.Container, seen[n.Node+"/"+c.Container])
				}
			}
		}
	}
	if changing != len(seen) || changing != p.Changed {
		t.Errorf("%d changing containers, %d in waves, Changed=%d", changing, len(seen), p.Changed)
	}
	for _, s := range p.Services {
		for _, d := range s.DependsOn {
			if f, ok := firstWave[s.Name]; ok {
				if l, ok := lastWave[d]; ok && l >= f {
					t.Errorf("%s starts in wave %d but its dependency %s ends in wave %d", s.Name, f, d, l)
				}
			}
		}
	}
}

func TestOnlyPlacedServicesAreTouched(t *testing.T) {
	p := build(t, "testdata/composable")
	for _, n := range p.Nodes {
		for _, c := range n.Containers {
			if strings.HasPrefix(n.Node, "cmp") && !strings.HasPrefix(c.Container, "nova_compute") && !strings.HasPrefix(c.Container, "nova_libvirt") {
				t.Errorf("compute %s plans %s, a service its role does not run", n.Node, c.Container)
			}
		}
	}
	ops := map[string]string{}
	for _, s := range p.Services {
		ops[s.Name] = s.Operation
	}
	want := map[string]string{"keystone": plan.OpUpgrade, "nova-api": plan.OpUpdate, "mariadb": plan.OpUnchanged, "nova-libvirt": plan.OpUpdate}
	for s, op := range want {
		if ops[s] != op {
			t.Errorf("%s: operation %s, want %s", s, ops[s], op)
		}
	}
}

func TestErrors(t *testing.T) {
	in := plan.Input{Nodes: []plan.Node{{Name: "n1", Containers: []plan.Container{
		{Name: "a", Service: "a", Image: "a:1"}, {Name: "b", Service: "b", Image: "b:1"}, {Name: "c", Service: "c", Image: "c:1"}}}}}
	tests := []struct {
		name string
		rel  plan.Release
		want string
	}{
		{"cycle", plan.Release{Name: "r", Services: map[string]plan.Target{
			"a": {ServiceRelease: svc("a:2"), DependsOn: []string{"c"}},
			"b": {ServiceRelease: svc("b:2"), DependsOn: []string{"a"}},
			"c": {ServiceRelease: svc("c:2"), DependsOn: []string{"b"}}}}, "dependency cycle: a → c → b → a"},
		{"unplaced", plan.Release{Name: "r", Services: map[string]plan.Target{"zz": {ServiceRelease: svc("z:2")}}}, "no node runs service zz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan.Build(tc.rel, in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWavesGrowToMaxUnavailable(t *testing.T) {
	p := build(t, "testdata/maxunavailable")
	var sizes []int
	for _, w := range p.Rollout() {
		sizes = append(sizes, len(w.Nodes))
	}
	// web (max 3): 1, 2, 3, 3, 1; then sidecar (50% of 10 = 5): 1, 2, 4, 3.
	if want := []int{1, 2, 3, 3, 1, 1, 2, 4, 3}; !slices.Equal(sizes, want) {
		t.Errorf("wave sizes = %v, want %v", sizes, want)
	}
}

func svc(image string) (s events.ServiceRelease) { s.Image = image; return s }
