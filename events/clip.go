package events

import (
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
