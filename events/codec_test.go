package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cutover-dev/cutover/events"
)

func TestSamplesCoverCatalog(t *testing.T) {
	have := map[string]bool{}
	for _, s := range samples {
		have[s.EventType()] = true
	}
	for _, typ := range events.KnownTypes() {
		if !have[typ] {
			t.Errorf("no sample for %s in samples_test.go", typ)
		}
	}
}

func TestRoundTripEveryType(t *testing.T) {
	for _, d := range samples {
		t.Run(d.EventType(), func(t *testing.T) {
			e := sampleEvent(d)
			m, err := events.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get("Content-Type"); got != events.ContentTypeStructured {
				t.Errorf("Content-Type = %q", got)
			}
			if got := m.Header.Get(nats.MsgIdHdr); got != e.ID() {
				t.Errorf("Nats-Msg-Id = %q, want %q", got, e.ID())
			}
			got, err := events.Decode(m.Header, m.Data)
			if err != nil {
				t.Fatalf("decode: %v\n%s", err, m.Data)
			}
			for _, attr := range []struct{ name, got, want string }{
				{"id", got.ID(), e.ID()}, {"type", got.Type(), e.Type()}, {"source", got.Source(), e.Source()},
				{"subject", got.Subject(), e.Subject()}, {"dataschema", got.DataSchema(), events.SchemaURI(d.EventType())},
				{"upgradeid", events.UpgradeID(got), events.UpgradeID(e)}, {"nodeid", events.NodeID(got), "node1"},
			} {
				if attr.got != attr.want {
					t.Errorf("%s = %q, want %q", attr.name, attr.got, attr.want)
				}
			}
			if !got.Time().Equal(e.Time()) {
				t.Errorf("time = %v, want %v", got.Time(), e.Time())
			}
			// The data decodes back to the value we put in.
			ptr := reflect.New(reflect.TypeOf(d))
			if err := json.Unmarshal(got.Data(), ptr.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ptr.Elem().Interface(), d) {
				t.Errorf("data = %+v, want %+v", ptr.Elem().Interface(), d)
			}
		})
	}
}

func TestIDsAreTimeOrdered(t *testing.T) {
	var prev string
	for range 100 {
		e := events.MustNew(events.Source("test", ""), events.UpgradeStarted{Waves: 1}, events.WithUpgrade("u1"))
		if e.ID() <= prev {
			t.Fatalf("id %s not after %s", e.ID(), prev)
		}
		prev = e.ID()
	}
}

func TestDecodeBinaryMode(t *testing.T) {
	h := nats.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", "abc-1")
	h.Set("ce-source", "/my%20monitor")
	h.Set("Ce-Type", events.TypeHealthSignal) // any case
	h.Set("ce-subject", "caf%C3%A9%20tier")
	h.Set("ce-time", "2026-11-21T10:00:00Z")
	h.Set("ce-upgradeid", "up%2F1%20%C3%A9") // "up/1 é"
	h.Set("ce-traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("Content-Type", "application/json")
	body := []byte(`{"service":"web","node":"n1","status":"fail","message":"HTTP 503"}`)

	e, err := events.Decode(h, body)
	if err != nil {
		t.Fatal(err)
	}
	// source is a URI reference, so it keeps its URI escaping; string attributes are decoded.
	if e.Source() != "/my%20monitor" || e.Subject() != "café tier" || events.UpgradeID(e) != "up/1 é" || e.Type() != events.TypeHealthSignal {
		t.Errorf("attributes not percent-decoded: source=%q subject=%q upgradeid=%q type=%q", e.Source(), e.Subject(), events.UpgradeID(e), e.Type())
	}
	if events.Ext(e, events.ExtTraceparent) == "" {
		t.Error("traceparent extension lost")
	}
	sig, err := events.DataAs[events.HealthSignal](e)
	if err != nil || sig.Message != "HTTP 503" {
		t.Errorf("data = %+v, %v", sig, err)
	}
}

// binaryWith is a valid binary-mode health signal's headers with one header set.
func binaryWith(name, value string) nats.Header {
	h := nats.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", "b1")
	h.Set("ce-source", "/x")
	h.Set("ce-type", events.TypeHealthSignal)
	h.Set(name, value)
	return h
}

func TestDecodeRejectsMalformed(t *testing.T) {
	valid := sampleEvent(samples[0])
	structured := func(mutate func(map[string]any)) []byte {
		raw, _ := json.Marshal(valid)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		mutate(m)
		out, _ := json.Marshal(m)
		return out
	}
	binary := nats.Header{}
	binary.Set("ce-specversion", "1.0")
	binary.Set("ce-source", "/x")
	binary.Set("ce-type", events.TypeHealthSignal)

	tests := []struct {
		name      string
		header    nats.Header
		body      []byte
		wantField string
		wantIn    string
	}{
		{"not JSON", nil, []byte("hello"), "", "not a JSON object"},
		{"empty", nil, nil, "", "not a JSON object"},
		{"JSON array", nil, []byte("[1]"), "", "not a JSON object"},
		{"no type", nil, structured(func(m map[string]any) { delete(m, "type") }), "type", "required"},
		{"no id", nil, structured(func(m map[string]any) { delete(m, "id") }), "id", "required"},
		{"unknown type", nil, structured(func(m map[string]any) { m["type"] = "dev.cutover.nope" }), "type", "not a cutover event type"},
		{"bad specversion", nil, structured(func(m map[string]any) { m["specversion"] = "0.1" }), "specversion", "1.0 only"},
		{"specversion 0.3", nil, structured(func(m map[string]any) { m["specversion"] = "0.3" }), "specversion", "1.0 only"},
		{"specversion missing", nil, structured(func(m map[string]any) { delete(m, "specversion") }), "specversion", "required"},
		{"specversion not a string", nil, structured(func(m map[string]any) { m["specversion"] = 1.0 }), "specversion", "1.0 only"},
		{"upper-case extension", nil, structured(func(m map[string]any) { m["UpgradeID"] = "u1" }), "UpgradeID", "lower-case"},
		{"long extension name", nil, structured(func(m map[string]any) { m["abcdefghijklmnopqrstuvwxy"] = "x" }), "extension", "[a-z0-9]{1,20}"},
		{"extension with a dash", nil, structured(func(m map[string]any) { m["trace-id"] = "x" }), "trace-id", "lower-case"},
		{"time not RFC 3339", nil, structured(func(m map[string]any) { m["time"] = "yesterday" }), "time", "RFC 3339"},
		{"time not a string", nil, structured(func(m map[string]any) { m["time"] = 1700000000 }), "time", "string"},
		{"huge id", nil, structured(func(m map[string]any) { m["id"] = strings.Repeat("i", 300) }), "id", "limit"},
		{"too large", nil, structured(func(m map[string]any) {
			m["data"].(map[string]any)["requested_by"] = strings.Repeat("x", events.MaxEventSize)
		}), "", "MaxEventSize"},
		{"binary specversion 0", binaryWith("ce-specversion", "0"), []byte(`{"service":"web","status":"pass"}`), "specversion", "1.0 only"},
		{"binary specversion empty", binaryWith("ce-specversion", ""), []byte(`{"service":"web","status":"pass"}`), "specversion", "1.0 only"},
		{"binary long extension", binaryWith("ce-abcdefghijklmnopqrstuvwxy", "1"), []byte(`{"service":"web","status":"pass"}`), "extension", "[a-z0-9]{1,20}"},
		{"binary bad time", binaryWith("ce-time", "2026-13-01"), []byte(`{"service":"web","status":"pass"}`), "time", "RFC 3339"},
		{"missing required data field", nil, structured(func(m map[string]any) { delete(m["data"].(map[string]any)["release"].(map[string]any), "name") }), "data.release.name", "required"},
		{"wrong data type", nil, structured(func(m map[string]any) { m["data"].(map[string]any)["release"] = "v2" }), "data.release", "object"},
		{"bad enum", nil, structured(func(m map[string]any) { m["data"].(map[string]any)["failure_action"] = "explode" }), "data.failure_action", ""},
		{"empty services", nil, structured(func(m map[string]any) {
			m["data"].(map[string]any)["release"].(map[string]any)["services"] = map[string]any{}
		}), "data.release.services", "at least one service"},
		{"verdict timeout without the wait", nil, structured(func(m map[string]any) {
			m["data"].(map[string]any)["verdict_timeout_ms"] = 60000
		}), "data.verdict_timeout_ms", "wait_for_verdicts is not"},
		{"empty per-container image", nil, structured(func(m map[string]any) {
			for _, svc := range m["data"].(map[string]any)["release"].(map[string]any)["services"].(map[string]any) {
				svc.(map[string]any)["images"] = map[string]any{"keystone_ssh": ""}
			}
		}), "data.release.services.web.images", "keystone_ssh"},
		{"no data", nil, structured(func(m map[string]any) { delete(m, "data") }), "data", "missing"},
		{"foreign dataschema", nil, structured(func(m map[string]any) { m["dataschema"] = "https://example.com/x.json" }), "dataschema", "not the schema"},
		{"binary without id", binary, []byte(`{"service":"web","status":"pass"}`), "id", "ce-id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode(tc.header, tc.body)
			var fe *events.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.Field != tc.wantField {
				t.Errorf("field = %q, want %q (err: %v)", fe.Field, tc.wantField, err)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("err %q does not mention %q", err, tc.wantIn)
			}
		})
	}
}

func TestUnknownDataFieldsTolerated(t *testing.T) {
	e := sampleEvent(events.HealthSignal{Service: "web", Status: "pass"})
	raw, _ := json.Marshal(e)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["data"].(map[string]any)["added_in_v2"] = 42
	raw, _ = json.Marshal(m)
	if _, err := events.Decode(nil, raw); err != nil {
		t.Fatal(err)
	}
}

func TestSubjectNeedsItsTokens(t *testing.T) {
	e := events.MustNew(events.Source("planner", ""), events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: "a", Image: "b"}}})
	if _, err := events.Encode(e); err == nil || !strings.Contains(err.Error(), "nodeid") {
		t.Fatalf("err = %v, want one naming nodeid", err)
	}
	e = events.MustNew(events.Source("planner", ""), events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: "a", Image: "b"}}}, events.WithNode("a.b"))
	if _, err := events.Encode(e); err == nil {
		t.Fatal("a node name with a dot must not make a subject")
	}
}

func TestUpgradeOf(t *testing.T) {
	req := events.MustNew(events.Source("cli", ""), samples[0])
	if got := events.UpgradeOf(req); got != req.ID() {
		t.Errorf("a request without upgradeid belongs to upgrade %q, want its own id %q", got, req.ID())
	}
	st := events.MustNew(events.Source("planner", ""), events.UpgradeStarted{Waves: 1}, events.CausedBy(req), events.WithUpgrade(req.ID()))
	if events.UpgradeOf(st) != req.ID() {
		t.Error("upgradeid not used")
	}
	hb := events.MustNew(events.Source("node-updater", "n1"), events.NodeHeartbeat{}, events.WithNode("n1"))
	if events.UpgradeOf(hb) != "" {
		t.Error("a heartbeat belongs to no upgrade")
	}
}

// TestEncodeRefusesAnEventOverMaxEventSize: nothing cutover publishes may
// exceed NATS's default max_payload, whatever the server allows.
func TestEncodeRefusesAnEventOverMaxEventSize(t *testing.T) {
	services := map[string]events.ServiceRelease{}
	for i := range 40000 { // many short strings: New cuts only long ones
		services[fmt.Sprintf("service-%05d", i)] = events.ServiceRelease{Image: "registry.example/web:2"}
	}
	big := events.MustNew(events.Source("cli", ""), events.UpgradeRequested{Release: events.Release{Name: "r", Services: services}})
	if _, err := events.Encode(big); err == nil || !strings.Contains(err.Error(), "MaxEventSize") {
		t.Fatalf("err = %v, want one naming MaxEventSize", err)
	}
	if _, err := events.Encode(sampleEvent(samples[0])); err != nil {
		t.Fatal(err)
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"short", "short"},
		{"0123456789", "01234…[5 bytes cut]"},
		{"ééééé", "éé…[6 bytes cut]"}, // never cuts inside a rune
	} {
		if got := events.Clip(tc.in, 5); got != tc.want {
			t.Errorf("Clip(%q, 5) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	req := sampleEvent(samples[0]) // upgrade.requested
	sig := events.MustNew("/monitor", events.HealthSignal{Service: "web", Node: "n1", Status: "pass"}, events.WithSubject("web"), events.WithNode("n1"))
	bare := events.MustNew("/monitor", events.HealthSignal{Service: "web", Status: "pass"})
	cmd := events.MustNew("/planner", events.NodeUpdateRequested{Containers: []events.ContainerTarget{{Container: "a", Image: "b"}}}, events.WithNode("n1"))
	tests := []struct {
		name      string
		e         events.Event
		subject   string
		wantField string // "" for accepted
	}{
		{"request on its subject", req, events.SubjectUpgradeRequested, ""},
		{"request on a health subject", req, "cutover.health.web.n1", "type"},
		{"request on a longer subject", req, events.SubjectUpgradeRequested + ".x", "type"},
		{"signal on its subject", sig, "cutover.health.web.n1", ""},
		{"signal without attributes on any health subject", bare, "cutover.health.db.n7", ""},
		{"signal whose nodeid differs from the subject", sig, "cutover.health.web.n2", "nodeid"},
		{"signal whose service differs from the subject", sig, "cutover.health.db.n1", "subject"},
		{"command on another node's subject", cmd, events.NodeCmdSubject("n2"), "nodeid"},
		{"command on its node's status subject", cmd, events.NodeStatusSubject("n1"), "type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := events.CheckSubject(tc.e, tc.subject)
			var fe *events.FieldError
			switch {
			case tc.wantField == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.wantField != "" && !errors.As(err, &fe):
				t.Fatalf("err = %v, want a *FieldError on %s", err, tc.wantField)
			case tc.wantField != "" && fe.Field != tc.wantField:
				t.Fatalf("field = %q, want %q (%v)", fe.Field, tc.wantField, err)
			}
		})
	}
}

func TestSmallTypesHaveTheirOwnLimit(t *testing.T) {
	sig := events.MustNew("/monitor", events.HealthSignal{Service: "web", Status: "fail"}, events.WithSubject("web"), events.WithNode("n1"))
	sig.DataEncoded = []byte(`{"service":"web","status":"fail","message":"` + strings.Repeat("x", events.SmallEventSize) + `"}`) // as a client other than New writes it
	if _, err := events.Encode(sig); err == nil || !strings.Contains(err.Error(), "limit of the type") {
		t.Fatalf("err = %v: a health signal over its 64 KiB limit was encoded", err)
	}
	m, err := events.Encode(events.MustNew("/monitor", events.HealthSignal{Service: "web", Status: "fail"}, events.WithSubject("web"), events.WithNode("n1")))
	if err != nil {
		t.Fatal(err)
	}
	m.Data = []byte(strings.Replace(string(m.Data), `"status":"fail"`, `"status":"fail","message":"`+strings.Repeat("x", events.SmallEventSize)+`"`, 1))
	if _, err := events.Decode(m.Header, m.Data); err == nil || !strings.Contains(err.Error(), "limit of a dev.cutover.health.signal event") {
		t.Fatalf("err = %v, want the type's limit", err)
	}
}

// TestRequestsRefuseUnknownFields: "failure_acton" or "min_helthy" fell back
// to defaults without a word; requests now name the path and the nearest
// known field, status events still tolerate what a newer cutover adds.
func TestRequestsRefuseUnknownFields(t *testing.T) {
	withData := func(d events.Data, mutate func(map[string]any)) []byte {
		raw, _ := json.Marshal(sampleEvent(d))
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		mutate(m["data"].(map[string]any))
		out, _ := json.Marshal(m)
		return out
	}
	req := samples[0]
	tests := []struct {
		name      string
		body      []byte
		wantField string
		wantIn    string
	}{
		{"top-level typo", withData(req, func(d map[string]any) { d["failure_acton"] = "pause" }), "data.failure_acton", `did you mean "failure_action"`},
		{"nested in a map", withData(req, func(d map[string]any) {
			d["release"].(map[string]any)["services"] = map[string]any{"web": map[string]any{"image": "web:2", "min_helthy": 5000}}
		}), "data.release.services.web.min_helthy", `did you mean "min_healthy_ms"`},
		{"nothing close", withData(req, func(d map[string]any) { d["zzzzzzzzzzzz"] = 1 }), "data.zzzzzzzzzzzz", "the fields here are"},
		{"control request", withData(events.UpgradeControlRequested{Action: "pause"}, func(d map[string]any) { d["reson"] = "x" }), "data.reson", `did you mean "reason"`},
		{"migration request", withData(events.MigrationRequested{Driver: "sqlite", Database: "/d.db", Source: "/m"}, func(d map[string]any) { d["recovr"] = true }), "data.recovr", `did you mean "recover"`},
		{"migration rollback request", withData(events.MigrationRollbackRequested{Driver: "sqlite", Database: "/d.db", Source: "/m"}, func(d map[string]any) { d["databse"] = "x" }), "data.databse", `did you mean "database"`},
		{"rollback request", withData(events.RollbackRequested{Reason: "x"}, func(d map[string]any) { d["resaon"] = "y" }), "data.resaon", `did you mean "reason"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode(nil, tc.body)
			var fe *events.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.wantField || !strings.Contains(fe.Reason, tc.wantIn) {
				t.Fatalf("err = %v, want field %s and %q", err, tc.wantField, tc.wantIn)
			}
		})
	}
	// A status event keeps tolerating them (TestUnknownDataFieldsTolerated),
	// and every strict type's valid sample still decodes.
	for _, d := range samples {
		if s, _ := events.Lookup(d.EventType()); s.Strict {
			m, _ := events.Encode(sampleEvent(d))
			if _, err := events.Decode(m.Header, m.Data); err != nil {
				t.Errorf("valid %s refused: %v", d.EventType(), err)
			}
		}
	}
}

// A migration request is SQL files (source) or a command, never neither nor
// both; migrate is a phase of command migrations only.
func TestDecodeMigrationRequestSourceOrCommand(t *testing.T) {
	cmd := &events.MigrationCommand{Image: "reg/keystone:2025.1", Command: []string{"keystone-manage", "db_sync", "--expand"}}
	for _, tc := range []struct {
		name      string
		data      events.MigrationRequested
		wantField string
		wantIn    string
	}{
		{"source", events.MigrationRequested{Driver: "mysql", Database: "mysql://k@db/keystone", Source: "/m"}, "", ""},
		{"command", events.MigrationRequested{Driver: "mysql", Database: "mysql://k@db/keystone", Command: cmd, Phase: "migrate"}, "", ""},
		{"neither", events.MigrationRequested{Driver: "mysql", Database: "mysql://k@db/keystone"}, "data.source", "is missing"},
		{"both", events.MigrationRequested{Driver: "mysql", Database: "mysql://k@db/keystone", Source: "/m", Command: cmd}, "data.command", "either SQL files or a command"},
		{"migrate phase of files", events.MigrationRequested{Driver: "mysql", Database: "mysql://k@db/keystone", Source: "/m", Phase: "migrate"}, "data.phase", "command migrations"},
		{"command without image", events.MigrationRequested{Driver: "mysql", Database: "mysql://k@db/keystone", Command: &events.MigrationCommand{Command: []string{"x"}}}, "data.command.image", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := json.Marshal(sampleEvent(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			_, err = events.Decode(nil, raw)
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("Decode = %v, want it accepted", err)
				}
				return
			}
			var fe *events.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.wantField || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Decode = %v, want a FieldError on %s mentioning %q", err, tc.wantField, tc.wantIn)
			}
		})
	}
}

// TestNewCutsEchoedLongStrings: the planner echoed a 2 MB release name into
// a 2 MB upgrade.failed. Every string an event carries is cut to
// MaxEchoLen with a marker; the rest of the data is kept.
func TestNewCutsEchoedLongStrings(t *testing.T) {
	long := strings.Repeat("é", events.MaxEventSize)
	e := events.MustNew("/planner", events.UpgradeFailed{Reason: "release " + long + " refused", Wave: 3, Node: "n1"}, events.WithUpgrade("u1"))
	d, err := events.DataAs[events.UpgradeFailed](e)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Reason) > events.MaxEchoLen+32 || !strings.HasSuffix(d.Reason, " bytes cut]") || !strings.HasPrefix(d.Reason, "release éé") {
		t.Errorf("reason of %d bytes: %.60q…", len(d.Reason), d.Reason)
	}
	if d.Wave != 3 || d.Node != "n1" {
		t.Errorf("other fields changed: %+v", d)
	}
	if _, err := events.Encode(e); err != nil {
		t.Fatalf("the cut event does not encode: %v", err)
	}
	short := events.UpgradeFailed{Reason: `a "quoted" reason \ with escapes`, Wave: 1}
	if got, _ := events.DataAs[events.UpgradeFailed](events.MustNew("/planner", short, events.WithUpgrade("u1"))); got != short {
		t.Errorf("a short event changed: %+v", got)
	}
}

// TestREADMEExamplesDecode: the README's structured request and its
// binary-mode `nats pub -H ce-…` example pass every check issue 13 added.
func TestREADMEExamplesDecode(t *testing.T) {
	structured := []byte(`{
  "specversion": "1.0",
  "id": "my-upgrade-0001",
  "source": "/ops/alice",
  "type": "dev.cutover.upgrade.requested",
  "datacontenttype": "application/json",
  "data": {
    "release": {
      "name": "2025.1.1",
      "services": { "web": { "image": "registry.example/web:2.0.1" } }
    }
  }
}`)
	if _, err := events.DecodeMsg(events.SubjectUpgradeRequested, nil, structured); err != nil {
		t.Errorf("README structured example: %v", err)
	}
	h := nats.Header{}
	for _, kv := range []string{"ce-specversion:1.0", "ce-id:x1", "ce-source:/ops", "ce-type:dev.cutover.upgrade.requested"} {
		k, v, _ := strings.Cut(kv, ":") // as `nats pub -H` splits them
		h.Add(k, v)
	}
	if _, err := events.DecodeMsg(events.SubjectUpgradeRequested, h, []byte(`{"release":{"name":"2025.1.1","services":{"web":{"image":"registry.example/web:2.0.1"}}}}`)); err != nil {
		t.Errorf("README binary-mode example: %v", err)
	}
}
