package events_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
)

// The fuzz targets below feed hostile bytes to every decoder the bus runs.
// Their seed corpus is in testdata/fuzz/<target>/ (the crashers found so
// far are kept there: the ce-specversion: 0 message among them) plus the
// valid samples added here. `make test` runs each for a few seconds,
// `make fuzz` for longer.

// checkDecoded asserts what every decoder promises: a *FieldError or an
// event that encodes and decodes back.
func checkDecoded(t *testing.T, e events.Event, err error) {
	t.Helper()
	if err != nil {
		var fe *events.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("error is not a *FieldError: %T %v", err, err)
		}
		if len(fe.Error()) > 4*events.MaxEchoLen {
			t.Fatalf("error of %d bytes echoes its input unbounded", len(fe.Error()))
		}
		return
	}
	if e.SpecVersion() != events.SpecVersion {
		t.Fatalf("accepted specversion %q", e.SpecVersion())
	}
	m, err := events.Encode(e)
	if err != nil {
		return // e.g. no nodeid for a node subject: refused on publish, not a crash
	}
	if _, err := events.DecodeMsg(m.Subject, m.Header, m.Data); err != nil {
		t.Fatalf("an accepted event does not survive Encode then Decode: %v\n%s", err, m.Data)
	}
}

// FuzzDecodeStructured: structured mode, the body alone, read on a subject.
func FuzzDecodeStructured(f *testing.F) {
	for _, d := range samples {
		m, err := events.Encode(sampleEvent(d))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.Subject, m.Data)
	}
	f.Fuzz(func(t *testing.T, subject string, body []byte) {
		e, err := events.Decode(nil, body)
		checkDecoded(t, e, err)
		if err == nil {
			_ = events.CheckSubject(e, subject)
		}
	})
}

// FuzzDecodeBinary: binary mode, attributes in ce-* headers.
func FuzzDecodeBinary(f *testing.F) {
	f.Add("1.0", "x1", "/ops", events.TypeUpgradeRequested, "", "upgradeid", "u1", "application/json",
		[]byte(`{"release":{"name":"r","services":{"web":{"image":"web:2"}}}}`))
	f.Add("1.0", "x2", "/mon", events.TypeHealthSignal, "2026-11-21T10:00:00Z", "nodeid", "n1", "",
		[]byte(`{"service":"web","node":"n1","status":"fail","message":"HTTP 503"}`))
	f.Fuzz(func(t *testing.T, specversion, id, source, typ, tm, extName, extValue, contentType string, body []byte) {
		h := nats.Header{}
		h.Set("ce-specversion", specversion)
		for name, v := range map[string]string{"ce-id": id, "ce-source": source, "ce-type": typ, "ce-time": tm, "Content-Type": contentType} {
			if v != "" {
				h.Set(name, v)
			}
		}
		if extName != "" {
			h.Set("ce-"+extName, extValue)
		}
		e, err := events.Decode(h, body)
		checkDecoded(t, e, err)
	})
}

// requestTypes are the types whose data comes from outside cutover.
var requestTypes = func() []events.Data {
	var out []events.Data
	for _, d := range samples {
		if s, _ := events.Lookup(d.EventType()); s.Strict {
			out = append(out, d)
		}
	}
	return out
}()

// FuzzRequestData: every request type's data, through schema, unknown-field
// and semantic validation; kind picks the type.
func FuzzRequestData(f *testing.F) {
	for i, d := range requestTypes {
		raw, err := json.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), raw)
	}
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		d := requestTypes[int(kind)%len(requestTypes)]
		if !json.Valid(data) {
			return // not data but an envelope error, FuzzDecodeStructured's ground
		}
		body, err := json.Marshal(map[string]any{
			"specversion": "1.0", "id": "fuzz-1", "source": "/fuzz", "type": d.EventType(),
			"datacontenttype": "application/json", "data": json.RawMessage(data),
		})
		if err != nil {
			return
		}
		e, err := events.Decode(nil, body)
		checkDecoded(t, e, err)
		if err == nil {
			if _, err := events.DataAs[map[string]any](e); err != nil {
				t.Fatalf("accepted data does not decode: %v", err)
			}
		}
	})
}
