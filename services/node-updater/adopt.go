package nodeupdater

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cutover-dev/cutover/events"
)

// Adopted is what the inventory says of a container this node runs that
// carries no cutover label (kolla-ansible created it).
type Adopted struct {
	// Service is the inventory's service of the container.
	Service string
	// WorkloadHost marks a container that hosts workloads (nova_libvirt).
	WorkloadHost bool
}

// adoptingRuntime lets the updater manage containers by name: a container
// in adopt (or its -cutover-old / -cutover-new stand-in) that carries no
// dev.cutover.node label at all is reported with the labels the inventory
// gives it, so ownership checks, the inventory and recovery treat it like
// any labelled container. Its first replacement writes those labels on the
// new container for real. A container labelled for another node is never
// adopted, and nothing the map does not name is.
type adoptingRuntime struct {
	Runtime
	node  string
	adopt map[string]Adopted
}

var _ Runtime = (*adoptingRuntime)(nil)

// adoptLabels returns the labels an adopted container named name gets, or
// nil when it is not adopted.
func (r *adoptingRuntime) adoptLabels(c Container) map[string]string {
	if _, labelled := c.Labels[events.LabelNode]; labelled {
		return nil
	}
	base := c.Name
	if b, ok := isOldName(base); ok {
		base = b
	} else if b, ok := isNewName(base); ok {
		base = b
	}
	a, ok := r.adopt[base]
	if !ok {
		return nil
	}
	l := map[string]string{events.LabelNode: r.node, events.LabelService: a.Service}
	if a.WorkloadHost {
		l[events.LabelWorkloadHost] = "true"
	}
	return l
}

// adoptingPuller keeps the wrapped runtime's pull progress reports.
type adoptingPuller struct {
	*adoptingRuntime
	progressPuller
}

// adopting wraps rt so the containers in adopt are managed by name.
func adopting(rt Runtime, node string, adopt map[string]Adopted) Runtime {
	a := &adoptingRuntime{Runtime: rt, node: node, adopt: adopt}
	if pp, ok := rt.(progressPuller); ok {
		return adoptingPuller{a, pp}
	}
	return a
}

func (r *adoptingRuntime) decorate(c Container) Container {
	l := r.adoptLabels(c)
	if l == nil {
		return c
	}
	labels := maps.Clone(c.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, l)
	c.Labels = labels
	return c
}

// List returns the labelled containers and the adopted ones, with the
// stand-ins of an unfinished replacement.
func (r *adoptingRuntime) List(ctx context.Context, node string) ([]Container, error) {
	list, err := r.Runtime.List(ctx, node)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range list {
		seen[c.ID] = true
	}
	for _, name := range slices.Sorted(maps.Keys(r.adopt)) {
		for _, n := range []string{name, oldName(name), newName(name)} {
			c, err := r.Runtime.Inspect(ctx, n)
			switch {
			case errors.Is(err, ErrNotFound):
				continue
			case err != nil:
				return nil, fmt.Errorf("look up adopted container %s: %w", n, err)
			}
			if seen[c.ID] || c.Name != n {
				continue // already listed, or n matched an ID prefix
			}
			if r.adoptLabels(c) == nil {
				continue // labelled: the engine's own list has it if it is ours
			}
			seen[c.ID] = true
			list = append(list, r.decorate(c))
		}
	}
	return list, nil
}

// Inspect reports an adopted container with the inventory's labels.
func (r *adoptingRuntime) Inspect(ctx context.Context, nameOrID string) (Container, error) {
	c, err := r.Runtime.Inspect(ctx, nameOrID)
	if err != nil {
		return c, err
	}
	return r.decorate(c), nil
}

// CreateReplacement gives the replacement of an adopted container
// cutover's labels; everything else it keeps from the old one.
func (r *adoptingRuntime) CreateReplacement(ctx context.Context, oldID, name, image string, labels map[string]string) (string, error) {
	old, err := r.Runtime.Inspect(ctx, oldID)
	if err != nil {
		return "", err
	}
	if l := r.adoptLabels(old); l != nil {
		labels = maps.Clone(labels)
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, l)
	}
	return r.Runtime.CreateReplacement(ctx, oldID, name, image, labels)
}
