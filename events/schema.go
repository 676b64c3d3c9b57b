package events

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:generate go run ./internal/gen

// Schemas holds the JSON Schema of every event type's data, one file per type
// named <type>.json. The files are generated from the data structs and a test
// fails when they drift.
//
//go:embed schemas/*.json
var Schemas embed.FS

var compiled = sync.OnceValues(compileSchemas)

func compileSchemas() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	for _, s := range Catalog {
		raw, err := Schemas.ReadFile("schemas/" + s.Type + ".json")
		if err != nil {
			return nil, fmt.Errorf("read schema of %s: %w", s.Type, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse schema of %s: %w", s.Type, err)
		}
		if err := c.AddResource(SchemaURI(s.Type), doc); err != nil {
			return nil, fmt.Errorf("add schema of %s: %w", s.Type, err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(Catalog))
	for _, s := range Catalog {
		sch, err := c.Compile(SchemaURI(s.Type))
		if err != nil {
			return nil, fmt.Errorf("compile schema of %s: %w", s.Type, err)
		}
		out[s.Type] = sch
	}
	return out, nil
}

var printer = message.NewPrinter(language.English)

// validateData checks an event's JSON data against its type's schema. The
// error is a *FieldError naming the first offending field as data.<path>.
func validateData(typ string, data []byte) error {
	schemas, err := compiled()
	if err != nil {
		return err
	}
	sch, ok := schemas[typ]
	if !ok {
		return &FieldError{Field: "type", Reason: fmt.Sprintf("no schema for %q", typ)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &FieldError{Field: "data", Reason: "is missing; " + typ + " events carry JSON data (see " + SchemaURI(typ) + ")"}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &FieldError{Field: "data", Reason: fmt.Sprintf("is not valid JSON: %v", err)}
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	path := append([]string{"data"}, leaf.InstanceLocation...)
	reason := leaf.ErrorKind.LocalizedString(printer)
	if req, ok := leaf.ErrorKind.(*kind.Required); ok && len(req.Missing) > 0 {
		path = append(path, req.Missing[0])
		reason = "is required by " + SchemaURI(typ)
	}
	return &FieldError{Field: strings.Join(path, "."), Reason: reason}
}
