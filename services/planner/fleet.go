package planner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// fleet reads every live node's inventory.
func (p *Planner) fleet(ctx context.Context) ([]events.NodeInventory, error) {
	return readFleet(ctx, p.nodes, p.log)
}

// Fleet reads every live node's inventory from the cutover-nodes bucket,
// sorted by node: the fleet the planner plans against (cutover plan
// without --inventory, cutover nodes).
func Fleet(ctx context.Context, js jetstream.JetStream) ([]events.NodeInventory, error) {
	kv, err := js.KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w (is cutover dev or a planner running on this NATS?)", events.BucketNodes, err)
	}
	return readFleet(ctx, kv, slog.New(slog.DiscardHandler))
}

func readFleet(ctx context.Context, nodes jetstream.KeyValue, log *slog.Logger) ([]events.NodeInventory, error) {
	lister, err := nodes.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]events.NodeInventory, 0, len(keys))
	for _, k := range keys {
		entry, err := nodes.Get(ctx, k)
		if events.IsNotFound(err) {
			continue // expired between list and get: the node is lost
		}
		if err != nil {
			return nil, fmt.Errorf("read node %s: %w", k, err)
		}
		var inv events.NodeInventory
		if err := json.Unmarshal(entry.Value(), &inv); err != nil {
			log.Warn("ignoring unreadable node inventory", "node", k, "err", err)
			continue
		}
		out = append(out, inv)
	}
	return out, nil
}
