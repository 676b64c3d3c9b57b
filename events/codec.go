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
)

// ContentTypeStructured is the Content-Type of a structured-mode CloudEvent.
const ContentTypeStructured = "application/cloudevents+json"

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
// Nats-Msg-Id set to the event id for JetStream deduplication.
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
	m.Data = body
	return m, nil
}

// Decode reads an event from a NATS message body and headers, in structured
// mode or, when a ce-specversion header is present, binary mode with
// percent-decoded ce-* headers. It checks the CloudEvents attributes, that the
// type is in the catalog, and the data against its type's JSON Schema. Every
// error is a *FieldError naming what is wrong.
func Decode(h nats.Header, body []byte) (Event, error) {
	var e Event
	var err error
	if headerValue(h, "ce-specversion") != "" {
		e, err = decodeBinary(h, body)
	} else {
		e, err = decodeStructured(body)
	}
	if err != nil {
		return Event{}, err
	}
	if err := e.Validate(); err != nil {
		return Event{}, attributeError(err)
	}
	if _, ok := Lookup(e.Type()); !ok {
		return Event{}, unknownType(e.Type())
	}
	if ds := e.DataSchema(); ds != "" && ds != SchemaURI(e.Type()) {
		return Event{}, &FieldError{Field: "dataschema", Reason: fmt.Sprintf("%q is not the schema of %s; use %s or leave it out", ds, e.Type(), SchemaURI(e.Type()))}
	}
	if ct := e.DataContentType(); ct != "" && !strings.Contains(ct, "json") {
		return Event{}, &FieldError{Field: "datacontenttype", Reason: fmt.Sprintf("%q is not JSON; cutover events carry application/json data", ct)}
	}
	if err := validateData(e.Type(), e.Data()); err != nil {
		return Event{}, err
	}
	if err := validateSemantics(e); err != nil {
		return Event{}, err
	}
	return e, nil
}

// peekType reads an encoded event's type without decoding or validating the
// rest; "" when it has none that can be read.
func peekType(h nats.Header, body []byte) string {
	if headerValue(h, "ce-specversion") != "" {
		v, err := url.PathUnescape(headerValue(h, "ce-type"))
		if err != nil {
			return ""
		}
		return v
	}
	var probe struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &probe) != nil {
		return ""
	}
	return probe.Type
}

func decodeStructured(body []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(body, &e); err == nil && e.Validate() == nil {
		return e, nil
	}
	// Only a bad message pays for a second parse, to say what is wrong.
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return Event{}, &FieldError{Reason: fmt.Sprintf("message is not a JSON object (%v); publish a CloudEvents 1.0 JSON event, or use binary mode with ce-* headers", err)}
	}
	for _, attr := range []string{"specversion", "id", "source", "type"} {
		if _, ok := probe[attr]; !ok {
			return Event{}, &FieldError{Field: attr, Reason: "is required by CloudEvents 1.0; add it to the event"}
		}
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return Event{}, &FieldError{Reason: fmt.Sprintf("not a CloudEvents 1.0 JSON event: %v", err)}
	}
	return e, nil // Decode reports the attribute that fails validation
}

func decodeBinary(h nats.Header, body []byte) (Event, error) {
	e := event.New(headerValue(h, "ce-specversion"))
	for key, vals := range h {
		name, ok := strings.CutPrefix(strings.ToLower(key), "ce-")
		if !ok || len(vals) == 0 || name == "specversion" {
			continue
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
				return Event{}, &FieldError{Field: "time", Reason: fmt.Sprintf("%q is not an RFC 3339 time", v)}
			}
			e.SetTime(t)
		default:
			e.SetExtension(name, v)
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
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vals := range h {
		if strings.EqualFold(k, name) && len(vals) > 0 {
			return vals[0]
		}
	}
	return ""
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
