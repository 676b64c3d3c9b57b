package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// PinManifest rewrites a release manifest (YAML) so that every image
// (services.<name>.image and services.<name>.images.<container>) is pinned
// to the digest its tag has now. Comments and layout are kept; every image
// that cannot be resolved is reported at once.
func PinManifest(ctx context.Context, raw []byte, insecure bool) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("read release manifest: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("pin release manifest: it is empty")
	}
	services := child(root.Content[0], "services")
	if services == nil || services.Kind != yaml.MappingNode {
		return nil, errors.New("pin release manifest: no services mapping; see cutover apply -h for the format")
	}
	var errs []error
	pin := func(n *yaml.Node) {
		if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
			return
		}
		pinned, err := Pin(ctx, n.Value, insecure)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n.Line, err))
			return
		}
		n.Value = pinned
	}
	for i := 1; i < len(services.Content); i += 2 {
		svc := services.Content[i]
		pin(child(svc, "image"))
		if imgs := child(svc, "images"); imgs != nil && imgs.Kind == yaml.MappingNode {
			for j := 1; j < len(imgs.Content); j += 2 {
				pin(imgs.Content[j])
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pin release manifest: %w", err)
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, fmt.Errorf("write pinned manifest: %w", err)
	}
	return out.Bytes(), nil
}

// child returns the value of key in a mapping node, or nil.
func child(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
