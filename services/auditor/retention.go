package auditor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cutover-dev/cutover/events"
)

// Defaults of the auditor's own retention of liveness and health chatter.
const (
	// DefaultSignalRetention is how long the history keeps heartbeats and
	// health signals that belong to no upgrade: a day, long enough to look
	// at a node's or a service's recent past, while 5,000 nodes' heartbeats
	// alone are 14.4 million rows a day (docs/architecture.md, "Retention").
	DefaultSignalRetention = 24 * time.Hour
	// DefaultPruneEvery is how often the auditor deletes what is older.
	DefaultPruneEvery = 10 * time.Minute
	// pruneBatch bounds one delete, so the store's writer is never held
	// for long while the consumer waits to append.
	pruneBatch = 5000
)

// RetentionOf turns a --signal-retention flag, where 0 means for good,
// into Config.SignalRetention, where 0 means the default.
func RetentionOf(flag time.Duration) time.Duration {
	if flag == 0 {
		return -1
	}
	return flag
}

// SignalTypes are the event types kept under the signal retention: node
// heartbeats and health signals. Every other event, and a signal that
// carries an upgrade id, stays for good.
func SignalTypes() []string {
	return []string{events.TypeNodeHeartbeat, events.TypeHealthSignal}
}

// Pruner is what the retention loop needs from a history store.
type Pruner interface {
	// PruneSignals deletes at most limit records of SignalTypes whose time
	// is before before and whose upgrade id is empty, and returns how many
	// it deleted.
	PruneSignals(ctx context.Context, before time.Time, limit int) (int, error)
}

// pruner deletes old heartbeats and health signals every interval until
// stopped.
type pruner struct {
	store     Pruner
	retention time.Duration
	every     time.Duration
	now       func() time.Time
	log       *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
}

// start runs the loop on its own goroutine; stop ends it.
func (p *pruner) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			if _, err := p.prune(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("prune heartbeats and health signals; trying again later", "every", p.every, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stop ends the loop and waits for it, abandoning a delete in progress
// (each batch is one statement: it is kept or not).
func (p *pruner) stop() {
	p.cancel()
	<-p.done
}

// prune deletes, batch after batch, the signals older than the retention.
func (p *pruner) prune(ctx context.Context) (int, error) {
	before := p.now().Add(-p.retention)
	total := 0
	for {
		n, err := p.store.PruneSignals(ctx, before, pruneBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("prune signals before %s: %w", before.Format(time.RFC3339), err)
		}
		if n < pruneBatch || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		p.log.Info("pruned heartbeats and health signals", "deleted", total, "older_than", p.retention)
	}
	return total, nil
}
