package render

import (
	"testing"
	"time"
)

func TestHumanFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{Plural(1, "node"), "1 node"},
		{Plural(3, "node"), "3 nodes"},
		{Plural(0, "container"), "0 containers"},
		{Plural(2, "process"), "2 processes"},
		{Plural(2, "replica"), "2 replicas"},
		{Plural(2, "policy"), "2 policies"},
		{Plural(2, "key"), "2 keys"},
		{Duration(850 * time.Millisecond), "850ms"},
		{Duration(1024973369 * time.Nanosecond), "1.0s"},
		{Duration(42 * time.Second), "42s"},
		{Duration(123 * time.Second), "2m03s"},
		{Duration(65 * time.Minute), "1h05m"},
		{Duration(72 * time.Hour), "3d"},
		{Ago(time.Time{}, time.Now()), "never"},
		{Counts(map[string]int{"502 Bad Gateway": 1, "503 Service Unavailable": 84}), "503 Service Unavailable: 84, 502 Bad Gateway: 1"},
		{Counts(nil), "none"},
		{List([]string{"a", "b", "c"}), "a, b and c"},
		{List(nil), "none"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
