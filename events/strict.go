package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// checkKnownFields rejects a field of a request's data that its struct does
// not have, naming its path and the nearest known name: a typo such as
// "failure_acton" would otherwise fall back to a default without a word.
// Only request types are strict (Spec.Strict); status events from a newer
// cutover may carry fields this version does not know.
func checkKnownFields(s Spec, data []byte) error {
	if !s.Strict {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil // the schema check has already named what is wrong
	}
	return knownFields(reflect.TypeOf(s.New()), doc, "data")
}

func knownFields(t reflect.Type, v any, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys) // the first unknown field in a stable order
		for _, k := range keys {
			f, ok := fields[k]
			if !ok {
				return unknownField(path+"."+Clip(k, 64), k, fields)
			}
			if err := knownFields(f, obj[k], path+"."+k); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, el := range arr {
			if err := knownFields(t.Elem(), el, fmt.Sprintf("%s.%d", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := knownFields(t.Elem(), obj[k], path+"."+Clip(k, 64)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields maps a struct's JSON names to their types, embedded structs included.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					out[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func unknownField(path, name string, fields map[string]reflect.Type) error {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	best, dist := "", -1
	for _, k := range known {
		if d := EditDistance(name, k); dist < 0 || d < dist {
			best, dist = k, d
		}
	}
	if best != "" && dist <= max(2, len(best)/3) {
		return &FieldError{Field: path, Reason: fmt.Sprintf("is not a known field; did you mean %q? (unknown fields in requests are refused so a typo cannot fall back to a default)", best)}
	}
	return &FieldError{Field: path, Reason: fmt.Sprintf("is not a known field; the fields here are %s", strings.Join(known, ", "))}
}

// EditDistance is the Levenshtein distance between a and b, bounded in cost
// by the names' length (Clip keeps hostile ones short).
func EditDistance(a, b string) int {
	if len(a) > 64 {
		a = a[:64]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
