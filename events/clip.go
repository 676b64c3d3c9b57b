package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// MaxEchoLen bounds a string that cutover copies from input it received
// into an event it publishes (a release name, an error from a client): input
// may be as large as MaxEventSize, and echoing it whole would make every
// answer as large as the question.
const MaxEchoLen = 1024

// Clip returns s cut to at most n bytes, on a UTF-8 boundary, with a marker
// saying how much was cut; s unchanged when it fits.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…[%d bytes cut]", s[:cut], len(s)-cut)
}

// clipJSON cuts every string value of a JSON document longer than
// MaxEchoLen with Clip's marker. Documents without one (nearly all) are
// returned as they are after a single scan; the others are decoded and
// encoded again, which may reorder their object keys.
func clipJSON(raw []byte) []byte {
	if !hasLongString(raw, MaxEchoLen) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return raw
	}
	out, err := json.Marshal(clipValue(doc))
	if err != nil {
		return raw
	}
	return out
}

func clipValue(v any) any {
	switch x := v.(type) {
	case string:
		return Clip(x, MaxEchoLen)
	case []any:
		for i := range x {
			x[i] = clipValue(x[i])
		}
	case map[string]any:
		for k, el := range x {
			x[k] = clipValue(el)
		}
	}
	return v
}

// hasLongString reports whether a JSON document holds a string token of
// more than n bytes (escapes counted as written).
func hasLongString(raw []byte, n int) bool {
	if len(raw) <= n {
		return false
	}
	in, esc, start := false, false, 0
	for i, c := range raw {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			if in && i-start > n {
				return true
			}
			in, start = !in, i+1
		}
	}
	return false
}
