package natstest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
)

// ReportInventory writes node's entry in the cutover-nodes bucket, as its
// node-updater would: containers cs, runtime "fake".
func ReportInventory(ctx context.Context, js jetstream.JetStream, node string, cs []events.ObservedContainer) error {
	kv, err := js.KeyValue(ctx, events.BucketNodes)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(events.NodeInventory{Node: node, Runtime: "fake", Containers: cs})
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, node, raw)
	return err
}

// AnswerNodes stands in for node-updaters: a consumer named durable reads
// the node commands on subject (events.NodeCmdSubject of one node, or
// cutover.node.*.cmd for every node) and publishes answer's reply to each
// (node.update.completed or node.update.failed) from the command's node,
// caused by the command. An error from answer fails the delivery. The
// consumer stops when the test ends.
func AnswerNodes(t testing.TB, js jetstream.JetStream, durable, subject string, answer func(ctx context.Context, d events.NodeUpdateRequested) (events.Data, error)) {
	t.Helper()
	pub := events.NewPublisher(js)
	c, err := events.Consume(t.Context(), js, events.ConsumerConfig{Durable: durable, FilterSubjects: []string{subject}},
		func(ctx context.Context, cmd events.Event) error {
			d, err := events.DataAs[events.NodeUpdateRequested](cmd)
			if err != nil {
				return err
			}
			reply, err := answer(ctx, d)
			if err != nil {
				return err
			}
			node := events.NodeID(cmd)
			return pub.Publish(ctx, events.MustNew(events.Source("node-updater", node), reply, events.CausedBy(cmd), events.WithNode(node)))
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
}
