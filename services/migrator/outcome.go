package migrator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/cutover-dev/cutover/events"
)

// publishTimeout bounds the publication of a status event once the work is
// done; it does not depend on the handler's context, which shutdown cancels.
const publishTimeout = 15 * time.Second

// statusNamespace derives status event ids from the request id and the
// status type, so publishing a status again is dropped by JetStream's
// deduplication instead of reaching consumers twice.
var statusNamespace = uuid.MustParse("3c0b8f5e-1d0e-4b8e-9b7a-6d6967726174")

// status builds a status event answering req.
func status(req events.Event, data events.Data) (events.Event, error) {
	id := uuid.NewSHA1(statusNamespace, []byte(req.ID()+"/"+data.EventType())).String()
	return events.New(events.Source("migrator", ""), data, events.CausedBy(req), events.WithID(id))
}

// publish publishes a status event answering req.
func (m *Migrator) publish(ctx context.Context, req events.Event, data events.Data) error {
	e, err := status(req, data)
	if err != nil {
		return fmt.Errorf("build %s for request %s: %w", data.EventType(), req.ID(), err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	return m.pub.Publish(ctx, e)
}

// outcome is the final status of a request, kept in the processed bucket
// until its TTL so that a redelivery republishes it instead of working again.
type outcome struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

func outcomeKey(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return Durable + "-outcome." + hex.EncodeToString(sum[:20])
}

// finish records the final status of a request, then publishes it.
func (m *Migrator) finish(ctx context.Context, req events.Event, data events.Data, log *slog.Logger) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode %s for request %s: %w", data.EventType(), req.ID(), err)
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if val, err := json.Marshal(outcome{Type: data.EventType(), Data: raw}); err == nil {
		if _, err := m.processed.Put(kctx, outcomeKey(req.ID()), val); err != nil {
			// Only a redelivery after a crash needs the record; publish anyway.
			log.Warn("record request outcome", "err", err)
		}
	}
	if err := m.publish(ctx, req, data); err != nil {
		return err
	}
	log.Info("request answered", "status", data.EventType())
	return nil
}

// failures returns how the handler of request e (verb: migrate or roll
// back) answers a failure on database: failed answers it with
// migration.failed, logged as what; fail does too, unless shutdown caused
// it before anything changed: then it returns an error, so the request is
// redelivered.
func (m *Migrator) failures(ctx context.Context, e events.Event, database, verb, what string, log *slog.Logger) (failed, fail func(events.MigrationFailed) error) {
	failed = func(f events.MigrationFailed) error {
		f.Database = database
		log.Warn(what, "file", f.File, "err", f.Error, "state", f.State)
		return m.finish(ctx, e, f, log)
	}
	fail = func(f events.MigrationFailed) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s %s: interrupted by shutdown before any change; the request will be redelivered: %w", verb, database, err)
		}
		return failed(f)
	}
	return failed, fail
}

// republishOutcome publishes again the recorded outcome of a request that was
// answered before (the process stopped before acking it). done reports
// whether there was one.
func (m *Migrator) republishOutcome(ctx context.Context, req events.Event) (done bool, err error) {
	entry, err := m.processed.Get(ctx, outcomeKey(req.ID()))
	if events.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read outcome of request %s: %w", req.ID(), err)
	}
	var o outcome
	if err := json.Unmarshal(entry.Value(), &o); err != nil {
		return false, nil // unreadable record: handle the request again
	}
	spec, ok := events.Lookup(o.Type)
	if !ok {
		return false, nil
	}
	data := spec.New()
	if err := json.Unmarshal(o.Data, data); err != nil {
		return false, nil
	}
	m.log.Info("request already answered; publishing its outcome again", "request", req.ID(), "status", o.Type)
	return true, m.publish(ctx, req, data)
}

// redact removes credentials from a database location for events and logs.
func redact(location string) string {
	u, err := url.Parse(location)
	if err != nil || u.User == nil {
		return location
	}
	return u.Redacted()
}
