package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover-dev/cutover/events"
	"github.com/cutover-dev/cutover/events/natstest"
)

// BenchmarkBus publishes b.N node commands and consumes them with a durable
// consumer and explicit acks, two ways in the same run:
//   - raw: nats.go JetStream PublishMsg of the encoded bytes, a pull consumer
//     acking each message (the floor);
//   - cutover: events.New + Publisher.Publish, events.Consume decoding and
//     schema-checking each event before its handler (what services do).
//
// Both publish synchronously (a service needs the stream's ack before it
// moves on). Reported: msgs/s.
func BenchmarkBus(b *testing.B) {
	sample := sampleEvent(samples[9]) // node.update.requested
	b.Run("raw", func(b *testing.B) {
		s := natstest.Start(b)
		tmpl, err := events.Encode(sample)
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		cons, err := s.JS.CreateOrUpdateConsumer(ctx, events.StreamName, jetstream.ConsumerConfig{
			Durable: "raw", FilterSubjects: []string{tmpl.Subject}, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 256,
		})
		if err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		cc, err := cons.Consume(func(m jetstream.Msg) { _ = m.Ack(); got.Add(1) }, jetstream.PullMaxMessages(64))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Stop()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			m := nats.NewMsg(tmpl.Subject)
			m.Header.Set("Content-Type", events.ContentTypeStructured)
			m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("raw-%d", i))
			m.Data = tmpl.Data
			if _, err := s.JS.PublishMsg(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		waitCount(b, &got, int64(b.N))
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
	b.Run("cutover", func(b *testing.B) {
		s := natstest.Start(b)
		ctx := context.Background()
		var got atomic.Int64
		c, err := events.Consume(ctx, s.JS, events.ConsumerConfig{Durable: "bench", FilterSubjects: []string{events.NodeCmdSubject("node1")}, Logger: slog.New(slog.DiscardHandler)},
			func(ctx context.Context, e events.Event) error { got.Add(1); return nil })
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		pub := events.NewPublisher(s.JS)
		d, _ := events.DataAs[events.NodeUpdateRequested](sample)
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			e, err := events.New(events.Source("planner", ""), d, events.WithUpgrade("u1"), events.WithNode("node1"))
			if err != nil {
				b.Fatal(err)
			}
			if err := pub.Publish(ctx, e); err != nil {
				b.Fatal(err)
			}
		}
		waitCount(b, &got, int64(b.N))
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	})
}

func waitCount(b *testing.B, got *atomic.Int64, want int64) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for got.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("consumed %d of %d", got.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkDecode decodes an upgrade request (a strict type) and a node
// command two ways in the same run:
//   - sdk: the CloudEvents SDK's json.Unmarshal alone (the floor, no check);
//   - cutover: events.DecodeMsg, with issue 13's checks (specversion first,
//     attribute names and lengths, size, subject, unknown request fields)
//     on top of the schema and semantic validation.
func BenchmarkDecode(b *testing.B) {
	for _, d := range []events.Data{samples[0], samples[9]} {
		m, err := events.Encode(sampleEvent(d))
		if err != nil {
			b.Fatal(err)
		}
		name := strings.TrimPrefix(d.EventType(), "dev.cutover.")
		b.Run(name+"/sdk", func(b *testing.B) {
			for b.Loop() {
				var e events.Event
				if err := json.Unmarshal(m.Data, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/cutover", func(b *testing.B) {
			for b.Loop() {
				if _, err := events.DecodeMsg(m.Subject, m.Header, m.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
