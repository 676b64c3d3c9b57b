package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ContentTypeStructured is the Content-Type of a structured-mode CloudEvent.
const ContentTypeStructured = "application/cloudevents+json"

// MaxEventSize is the largest encoded event, body and headers, that cutover
// publishes or accepts: 1 MiB, NATS's default max_payload. Encode refuses a
// larger event and Decode rejects one, so nothing depends on a server
// configured for bigger messages (the embedded server allows 8 MiB for the
// planner's KV state). The CUTOVER stream's MaxMsgSize is set to it.
const MaxEventSize = 1 << 20

// SpecVersion is the only CloudEvents version cutover reads and writes.
const SpecVersion = "1.0"

// Subject returns the NATS subject an event is published on, from its type's
// subject template and its nodeid, upgradeid and subject attributes.
func Subject(e Event) (string, error) {
	s, ok := Lookup(e.Type())
	if !ok {
		return "", unknownType(e.Type())
	}
	return subjectFor(s, NodeID(e), UpgradeID(e), e.Subject())
}

// Encode turns an event into a NATS message in structured JSON mode, with
// Nats-Msg-Id set to the event id for JetStream deduplication, and Nats-TTL
// for a type the stream keeps less than its max age (Spec.TTL).
func Encode(e Event) (*nats.Msg, error) {
	subj, err := Subject(e)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", e.Type(), e.ID(), err)
	}
	// The SDK's own marshaller writes compact JSON; json.Marshal would
	// only scan and copy its output once more.
	body, err := e.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", e.Type(), e.ID(), err)
	}
	m := nats.NewMsg(subj)
	m.Header.Set("Content-Type", ContentTypeStructured)
	m.Header.Set(nats.MsgIdHdr, e.ID())
	if s, _ := Lookup(e.Type()); s.TTL > 0 {
		m.Header.Set(jetstream.MsgTTLHeader, s.TTL.String())
	}
	m.Data = body
	if n := msgSize(m.Header, body); n > MaxEventSize {
		return nil, fmt.Errorf("encode %s %s: %w", e.Type(), e.ID(), tooLarge(n))
	} else if s, _ := Lookup(e.Type()); n > s.MaxBytes() {
		return nil, fmt.Errorf("encode %s %s: %d bytes, over the %d-byte limit of the type", e.Type(), e.ID(), n, s.MaxBytes())
	}
	return m, nil
}

// Decode reads an event from a NATS message body and headers, in structured
// mode or, when a ce-specversion header is present, binary mode with
// percent-decoded ce-* headers. It checks the CloudEvents attributes, that the
// type is in the catalog, and the data against its type's JSON Schema. Every
// error is a *FieldError naming what is wrong.
func Decode(h nats.Header, body []byte) (_ Event, rerr error) {
	// Decoding is fuzzed, but a panic in it (or in the SDK under it) must
	// not reach any reader, durable consumer or not: it becomes a rejection.
	defer func() {
		if r := recover(); r != nil {
			rerr = &FieldError{Reason: Clip(fmt.Sprintf("the message could not be decoded (panic: %v); it is refused", r), MaxEchoLen)}
		}
	}()
	if n := msgSize(h, body); n > MaxEventSize {
		return Event{}, tooLarge(n)
	}
	var e Event
	var err error
	if sv, ok := headerLookup(h, "ce-specversion"); ok {
		// The spec version comes first: the SDK builds a nil context for
		// a version it does not know, and every setter then panics.
		if sv != SpecVersion {
			return Event{}, badSpecVersion(sv, "set the header ce-specversion: 1.0")
		}
		e, err = decodeBinary(h, body)
	} else {
		e, err = decodeStructured(body)
	}
	if err != nil {
		return Event{}, err
	}
	if e.SpecVersion() != SpecVersion {
		return Event{}, badSpecVersion(e.SpecVersion(), `set "specversion": "1.0"`)
	}
	if err := e.Validate(); err != nil {
		return Event{}, attributeError(err)
	}
	if err := checkLengths(e); err != nil {
		return Event{}, err
	}
	spec, ok := Lookup(e.Type())
	if !ok {
		return Event{}, unknownType(e.Type())
	}
	if n := msgSize(h, body); n > spec.MaxBytes() {
		return Event{}, &FieldError{Reason: fmt.Sprintf("message is %d bytes, over the %d-byte limit of a %s event (docs/events.md)", n, spec.MaxBytes(), e.Type())}
	}
	if ds := e.DataSchema(); ds != "" && ds != SchemaURI(e.Type()) {
		return Event{}, &FieldError{Field: "dataschema", Reason: fmt.Sprintf("%q is not the schema of %s; use %s or leave it out", ds, e.Type(), SchemaURI(e.Type()))}
	}
	if ct := e.DataContentType(); ct != "" && !strings.Contains(ct, "json") {
		return Event{}, &FieldError{Field: "datacontenttype", Reason: fmt.Sprintf("%q is not JSON; cutover events carry application/json data", ct)}
	}
	if err := checkKnownFields(spec, e.Data()); err != nil {
		return Event{}, err
	}
	if err := validateData(e.Type(), e.Data()); err != nil {
		return Event{}, err
	}
	if err := validateSemantics(e); err != nil {
		return Event{}, err
	}
	return e, nil
}

// DecodeMsg is Decode for a message read from NATS: it also checks that the
// event's type may arrive on the subject it came on (CheckSubject).
func DecodeMsg(subject string, h nats.Header, body []byte) (Event, error) {
	e, err := Decode(h, body)
	if err != nil {
		return Event{}, err
	}
	if err := CheckSubject(e, subject); err != nil {
		return Event{}, err
	}
	return e, nil
}

// peekType reads an encoded event's type without decoding or validating the
// rest; "" when it has none that can be read.
func peekType(h nats.Header, body []byte) string {
	_, typ := peek(h, body)
	return typ
}

// peek reads an encoded event's id and type without decoding or validating
// the rest, for a rejection to name them; "" for what cannot be read.
func peek(h nats.Header, body []byte) (id, typ string) {
	if _, ok := headerLookup(h, "ce-specversion"); ok {
		id, _ = url.PathUnescape(headerValue(h, "ce-id"))
		typ, _ = url.PathUnescape(headerValue(h, "ce-type"))
		return id, typ
	}
	var probe struct {
		ID   any `json:"id"`
		Type any `json:"type"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return "", ""
	}
	id, _ = probe.ID.(string)
	typ, _ = probe.Type.(string)
	return id, typ
}

func decodeStructured(body []byte) (Event, error) {
	var e Event
	err := json.Unmarshal(body, &e)
	if err == nil && e.Validate() == nil {
		// The SDK lower-cases extension names: check them as written, in a
		// scan that costs far less than a second parse. Decode checks the
		// spec version (the SDK also reads 0.3) and the rest.
		if err := checkTopLevelNames(body); err != nil {
			return Event{}, err
		}
		return e, nil
	}
	if ferr := explainStructured(body); ferr != nil {
		return Event{}, ferr
	}
	if err != nil {
		return Event{}, &FieldError{Reason: fmt.Sprintf("not a CloudEvents 1.0 JSON event: %s", Clip(err.Error(), 200))}
	}
	return e, nil // Decode reports the attribute that fails validation
}

// explainStructured says what is wrong with a structured event the SDK did
// not read or validate, attribute by attribute, the spec version first;
// nil when it finds nothing. Only a bad message pays for it.
func explainStructured(body []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return &FieldError{Reason: fmt.Sprintf("message is not a JSON object (%s); publish a CloudEvents 1.0 JSON event, or use binary mode with ce-* headers", Clip(err.Error(), 200))}
	}
	raw, ok := probe["specversion"]
	if !ok {
		return &FieldError{Field: "specversion", Reason: `is required by CloudEvents 1.0; add "specversion": "1.0" to the event`}
	}
	var sv string
	if err := json.Unmarshal(raw, &sv); err != nil || sv != SpecVersion {
		return badSpecVersion(string(raw), `set "specversion": "1.0"`)
	}
	for _, attr := range []string{"id", "source", "type"} {
		if _, ok := probe[attr]; !ok {
			return &FieldError{Field: attr, Reason: "is required by CloudEvents 1.0; add it to the event"}
		}
	}
	names := make([]string, 0, len(probe))
	for name := range probe {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if contextAttributes[name] {
			if name != "data" && name != "data_base64" && !jsonString(probe[name]) {
				return &FieldError{Field: name, Reason: "must be a JSON string"}
			}
			continue
		}
		if err := validExtensionName(name); err != nil {
			return err
		}
	}
	if raw, ok := probe["time"]; ok {
		var ts string
		_ = json.Unmarshal(raw, &ts)
		if err := checkTime(ts); err != nil {
			return err
		}
	}
	return nil
}

// checkTopLevelNames checks the names of a JSON object's members, as
// written, against CloudEvents 1.0: the context attributes, or extension
// names of lower-case letters and digits. body is valid JSON (the SDK read it).
func checkTopLevelNames(body []byte) error {
	depth, in, esc, expectKey, start := 0, false, false, false, 0
	for i, c := range body {
		if in {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				in = false
				if depth == 1 && expectKey {
					expectKey = false
					// The map lookup does not allocate; the check of an
					// extension's name (a few per event) does not either.
					if name := body[start:i]; !contextAttributes[string(name)] && !isExtensionName(name) {
						return validExtensionName(string(name))
					}
				}
			}
			continue
		}
		switch c {
		case '"':
			in, start = true, i+1
		case '{', '[':
			depth++
			expectKey = depth == 1 && c == '{'
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		}
	}
	return nil
}

// contextAttributes are the CloudEvents 1.0 attribute names of a structured
// event that are not extensions.
var contextAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "datacontenttype": true,
	"dataschema": true, "subject": true, "time": true, "data": true, "data_base64": true,
}

func jsonString(raw json.RawMessage) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil
}

// maxExtensionName is CloudEvents 1.0's limit on an attribute name's length.
const maxExtensionName = 20

// validExtensionName checks an extension attribute name against CloudEvents
// 1.0: lower-case ASCII letters and digits, 1 to 20 of them.
func validExtensionName(name string) error {
	if name == "" || len(name) > maxExtensionName {
		return &FieldError{Field: "extension", Reason: fmt.Sprintf("attribute name %q is not 1 to %d characters; CloudEvents 1.0 names are [a-z0-9]{1,20}", Clip(name, 64), maxExtensionName)}
	}
	for _, c := range []byte(name) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return &FieldError{Field: Clip(name, 64), Reason: "is not a valid attribute name: CloudEvents 1.0 names are lower-case letters and digits, [a-z0-9]{1,20}"}
		}
	}
	return nil
}

// isExtensionName reports whether a name is [a-z0-9]{1,20}.
func isExtensionName(name []byte) bool {
	if len(name) == 0 || len(name) > maxExtensionName {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// checkTime checks a time attribute: RFC 3339, as CloudEvents 1.0 requires.
func checkTime(v string) error {
	if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
		return &FieldError{Field: "time", Reason: fmt.Sprintf("%q is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z); leave time out rather than guess it", Clip(v, 64))}
	}
	return nil
}

// MaxAttributeLen bounds the string attributes of an event (id, source,
// subject, extensions): they become subject tokens, KV keys and log fields,
// and are copied into every answer.
const MaxAttributeLen = 256

func checkLengths(e Event) error {
	for _, a := range []struct{ name, v string }{
		{"id", e.ID()}, {"source", e.Source()}, {"subject", e.Subject()}, {"dataschema", e.DataSchema()},
	} {
		if len(a.v) > MaxAttributeLen {
			return &FieldError{Field: a.name, Reason: fmt.Sprintf("is %d bytes, over the %d-byte limit of an attribute", len(a.v), MaxAttributeLen)}
		}
	}
	for name, v := range e.Extensions() {
		if s, ok := v.(string); ok && len(s) > MaxAttributeLen {
			return &FieldError{Field: name, Reason: fmt.Sprintf("is %d bytes, over the %d-byte limit of an attribute", len(s), MaxAttributeLen)}
		}
	}
	return nil
}

func badSpecVersion(got, fix string) error {
	return &FieldError{Field: "specversion", Reason: fmt.Sprintf("%s is not supported: cutover reads CloudEvents 1.0 only; %s", Clip(got, 64), fix)}
}

func tooLarge(n int) error {
	return &FieldError{Reason: fmt.Sprintf("message is %d bytes, over the %d-byte limit of a cutover event (MaxEventSize, NATS's default max_payload); send less, e.g. fewer services per request", n, MaxEventSize)}
}

// msgSize counts a message's body and headers as NATS does.
func msgSize(h nats.Header, body []byte) int {
	n := len(body)
	for k, vals := range h {
		for _, v := range vals {
			n += len(k) + len(v) + 4 // "k: v\r\n"
		}
	}
	return n
}

func decodeBinary(h nats.Header, body []byte) (Event, error) {
	e := event.New(SpecVersion) // Decode checked ce-specversion
	for key, vals := range h {
		// Header names are case-insensitive (as in HTTP, whose binding
		// this follows), so a client that canonicalises Ce-Upgradeid is
		// understood; the name itself must still be [a-z0-9]{1,20}.
		name, ok := strings.CutPrefix(strings.ToLower(key), "ce-")
		if !ok || len(vals) == 0 || name == "specversion" {
			continue
		}
		if err := validExtensionName(name); err != nil {
			return Event{}, err
		}
		v, err := url.PathUnescape(vals[0])
		if err != nil {
			return Event{}, &FieldError{Field: name, Reason: fmt.Sprintf("header %s is not valid percent-encoding: %v", key, err)}
		}
		switch name {
		case "id":
			e.SetID(v)
		case "source":
			e.SetSource(v)
		case "type":
			e.SetType(v)
		case "subject":
			e.SetSubject(v)
		case "dataschema":
			e.SetDataSchema(v)
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return Event{}, checkTime(v)
			}
			e.SetTime(t)
		case "datacontenttype":
			return Event{}, &FieldError{Field: "datacontenttype", Reason: "is carried by the Content-Type header in binary mode; drop the ce-datacontenttype header"}
		default:
			if err := e.Context.SetExtension(name, v); err != nil {
				return Event{}, &FieldError{Field: name, Reason: Clip(err.Error(), 200)}
			}
		}
	}
	for _, attr := range []string{"id", "source", "type"} {
		if headerValue(h, "ce-"+attr) == "" {
			return Event{}, &FieldError{Field: attr, Reason: "is required by CloudEvents 1.0; add the ce-" + attr + " header"}
		}
	}
	ct := headerValue(h, "Content-Type")
	if ct == "" {
		ct = event.ApplicationJSON
	}
	e.SetDataContentType(ct)
	e.DataEncoded = body
	return e, nil
}

// headerValue returns a header's first value, matching the name without case.
func headerValue(h nats.Header, name string) string {
	v, _ := headerLookup(h, name)
	return v
}

// headerLookup returns a header's first value, matching the name without
// case, and whether the header is present at all (even empty).
func headerLookup(h nats.Header, name string) (string, bool) {
	if vals, ok := h[name]; ok && len(vals) > 0 {
		return vals[0], true
	}
	for k, vals := range h {
		if strings.EqualFold(k, name) && len(vals) > 0 {
			return vals[0], true
		}
	}
	return "", false
}

// attributeError turns the CloudEvents SDK's validation error into a FieldError
// on the first offending attribute, in a stable order.
func attributeError(err error) error {
	var ve event.ValidationError
	if !errors.As(err, &ve) || len(ve) == 0 {
		return &FieldError{Reason: fmt.Sprintf("invalid CloudEvent: %v", err)}
	}
	fields := make([]string, 0, len(ve))
	for f := range ve {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	return &FieldError{Field: strings.TrimPrefix(fields[0], "extension:"), Reason: ve[fields[0]].Error()}
}

func unknownType(typ string) error {
	return &FieldError{Field: "type", Reason: fmt.Sprintf("%q is not a cutover event type; the catalog is in docs/events.md (e.g. %s)", typ, TypeUpgradeRequested)}
}

// validateSemantics decodes the data into its struct and runs its Validate
// method when it has one.
func validateSemantics(e Event) error {
	s, _ := Lookup(e.Type())
	d := s.New()
	v, ok := d.(Validator)
	if !ok {
		return nil
	}
	if err := json.Unmarshal(e.Data(), d); err != nil {
		return &FieldError{Field: "data", Reason: fmt.Sprintf("does not decode as %s data: %v", e.Type(), err)}
	}
	return v.Validate()
}
