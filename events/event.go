package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// Event is a CloudEvents 1.0 event.
type Event = event.Event

// Extension attribute names.
const (
	ExtUpgradeID   = "upgradeid"
	ExtNodeID      = "nodeid"
	ExtCausationID = "causationid"
	ExtTraceparent = "traceparent"
)

// SchemaBase prefixes the dataschema URI of every type: SchemaBase + type + ".json".
// The same files ship in events/schemas/.
const SchemaBase = "https://cutover.dev/schemas/v1/"

// SchemaURI returns the dataschema URI of an event type.
func SchemaURI(typ string) string { return SchemaBase + typ + ".json" }

// Source returns the CloudEvents source of a service, optionally on a node:
// /cutover/<service>[/<node>].
func Source(service, node string) string {
	if node == "" {
		return "/cutover/" + service
	}
	return "/cutover/" + service + "/" + node
}

// Option sets an optional attribute of a new event.
type Option func(*Event)

// WithUpgrade sets the upgradeid extension and, unless set otherwise, the subject.
func WithUpgrade(id string) Option {
	return func(e *Event) {
		e.SetExtension(ExtUpgradeID, id)
		if e.Subject() == "" {
			e.SetSubject(id)
		}
	}
}

// WithNode sets the nodeid extension.
func WithNode(node string) Option {
	return func(e *Event) { e.SetExtension(ExtNodeID, node) }
}

// WithSubject sets the CloudEvents subject attribute.
func WithSubject(s string) Option {
	return func(e *Event) { e.SetSubject(s) }
}

// WithID sets the event id instead of a new UUIDv7. Use it only for ids that
// must be the same each time the event is derived (deduplication).
func WithID(id string) Option {
	return func(e *Event) { e.SetID(id) }
}

// CausedBy links the new event to the event it answers: causationid is the
// cause's id, and upgradeid and traceparent are carried over when set.
func CausedBy(cause Event) Option {
	return func(e *Event) {
		e.SetExtension(ExtCausationID, cause.ID())
		if v := Ext(cause, ExtUpgradeID); v != "" && Ext(*e, ExtUpgradeID) == "" {
			WithUpgrade(v)(e)
		}
		if v := Ext(cause, ExtTraceparent); v != "" {
			e.SetExtension(ExtTraceparent, v)
		}
	}
}

// New builds an event of data's type: a time-ordered id (UUIDv7), source,
// type, time, dataschema, JSON data, and the options' attributes. A string
// in the data longer than MaxEchoLen is cut with a marker (Clip).
func New(source string, data Data, opts ...Option) (Event, error) {
	typ := data.EventType()
	if _, ok := Lookup(typ); !ok {
		return Event{}, fmt.Errorf("new event: type %q is not in the catalog", typ)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("new event id: %w", err)
	}
	e := event.New()
	e.SetID(id.String())
	e.SetSource(source)
	e.SetType(typ)
	e.SetTime(time.Now().UTC())
	e.SetDataSchema(SchemaURI(typ))
	raw, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s data: %w", typ, err)
	}
	// Nothing cutover publishes echoes unbounded input: a 2 MB release
	// name came back whole in upgrade.failed.
	raw = clipJSON(raw)
	// Raw JSON bytes go in as they are: SetData would store a []byte as data_base64.
	e.SetDataContentType(event.ApplicationJSON)
	e.DataEncoded = raw
	for _, o := range opts {
		o(&e)
	}
	if err := e.Validate(); err != nil {
		return Event{}, fmt.Errorf("new %s event: %w", typ, err)
	}
	return e, nil
}

// MustNew is New for data known to be valid at compile time (tests, fixed events).
func MustNew(source string, data Data, opts ...Option) Event {
	e, err := New(source, data, opts...)
	if err != nil {
		panic(err)
	}
	return e
}

// Ext returns a string extension attribute, or "" when it is absent.
func Ext(e Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// UpgradeID returns the upgradeid extension.
func UpgradeID(e Event) string { return Ext(e, ExtUpgradeID) }

// UpgradeOf returns the upgrade an event belongs to: its upgradeid, or for
// an upgrade request without one, its own id (which becomes the upgrade id).
func UpgradeOf(e Event) string {
	if id := UpgradeID(e); id != "" {
		return id
	}
	if e.Type() == TypeUpgradeRequested {
		return e.ID()
	}
	return ""
}

// NodeID returns the nodeid extension.
func NodeID(e Event) string { return Ext(e, ExtNodeID) }

// CausationID returns the causationid extension.
func CausationID(e Event) string { return Ext(e, ExtCausationID) }

// DataAs decodes the data of an event into T. Decode has already checked the
// data against its schema, so errors here mean a programming error or an
// event that did not come through Decode.
func DataAs[T any](e Event) (T, error) {
	var v T
	if err := json.Unmarshal(e.Data(), &v); err != nil {
		return v, &FieldError{Field: "data", Reason: fmt.Sprintf("does not decode as %T: %v", v, err)}
	}
	return v, nil
}

// FieldError says which attribute or data field of an event is wrong and why.
// The consume helper turns it into a dev.cutover.event.rejected event.
type FieldError struct {
	// Field is the attribute ("type", "nodeid") or data path ("data.release.name").
	Field string
	// Reason says what is wrong and what to do.
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}
