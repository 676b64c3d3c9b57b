package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// WaitNodes waits until every node-updater has published its inventory.
func (s *Stack) WaitNodes(ctx context.Context, nodes []string) error {
	kv, err := s.JetStream().KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, n := range nodes {
		for {
			if _, err := kv.Get(ctx, n); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("node-updater %s did not publish its inventory: %w", n, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// WaitAudited waits until the auditor has stored the upgrade's final event
// and returns how many events it holds for the upgrade.
func (s *Stack) WaitAudited(ctx context.Context, id string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		recs, err := s.Store().Events(ctx, id)
		if err == nil {
			for _, r := range recs {
				if r.Type == events.TypeUpgradeCompleted || r.Type == events.TypeUpgradeFailed {
					return len(recs), nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the auditor did not record the end of upgrade %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
