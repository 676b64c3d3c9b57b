package nodeupdater

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/cutover-dev/cutover/events"
)

// fakeEngine answers List by label and Inspect by name, as Docker does.
type fakeEngine struct {
	Runtime // nil: other methods are not used
	byName  map[string]Container
}

func (f fakeEngine) List(_ context.Context, node string) ([]Container, error) {
	var out []Container
	for _, c := range f.byName {
		if c.Labels[events.LabelNode] == node {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f fakeEngine) Inspect(_ context.Context, name string) (Container, error) {
	if c, ok := f.byName[name]; ok {
		return c, nil
	}
	return Container{}, fmt.Errorf("no container %s: %w", name, ErrNotFound)
}

// TestAdoptOnlyWhatTheInventoryNames: an unlabelled container is adopted
// only when the inventory names it (also under its -cutover-old name); a
// container labelled for another node is never adopted, even by name.
func TestAdoptOnlyWhatTheInventoryNames(t *testing.T) {
	eng := fakeEngine{byName: map[string]Container{}}
	add := func(name string, labels map[string]string) {
		eng.byName[name] = Container{ID: "id-" + name, Name: name, Labels: labels}
	}
	add("keystone", nil)
	add("nova_libvirt-cutover-old", map[string]string{"kolla_version": "x"})
	add("horizon", nil)
	add("mariadb", map[string]string{events.LabelNode: "other"})
	add("web", map[string]string{events.LabelNode: "n1", events.LabelService: "web"})
	rt := adopting(eng, "n1", map[string]Adopted{
		"keystone": {Service: "keystone"}, "nova_libvirt": {Service: "nova-libvirt", WorkloadHost: true}, "mariadb": {Service: "mariadb"},
	})
	list, err := rt.List(t.Context(), "n1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name+"="+c.Service())
		if c.Labels[events.LabelNode] != "n1" {
			t.Errorf("%s listed without the node label: %v", c.Name, c.Labels)
		}
	}
	slices.Sort(names)
	if want := []string{"keystone=keystone", "nova_libvirt-cutover-old=nova-libvirt", "web=web"}; !slices.Equal(names, want) {
		t.Errorf("listed %v, want %v", names, want)
	}
	lv, err := rt.Inspect(t.Context(), "nova_libvirt-cutover-old")
	if err != nil || !lv.WorkloadHost() || lv.Labels["kolla_version"] != "x" {
		t.Errorf("inspect adopted old libvirt = %+v, %v; want the workload-host label and its own labels", lv, err)
	}
	if eng.byName["keystone"].Labels != nil {
		t.Error("adoption wrote labels into the engine's container")
	}
	for _, n := range []string{"horizon", "mariadb"} {
		c, err := rt.Inspect(t.Context(), n)
		if err != nil {
			t.Fatal(err)
		}
		if c.Labels[events.LabelNode] == "n1" {
			t.Errorf("%s adopted: %v", n, c.Labels)
		}
	}
	if err := (&Config{Node: "n1", Adopt: map[string]Adopted{"x": {}}}).Validate(); err == nil {
		t.Error("an adopted container without a service validates")
	}
}
