package render

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Plural says n things: "1 node", "3 nodes", "0 containers".
func Plural(n int, singular string) string {
	if n == 1 {
		return "1 " + singular
	}
	switch {
	case strings.HasSuffix(singular, "s"), strings.HasSuffix(singular, "x"), strings.HasSuffix(singular, "sh"), strings.HasSuffix(singular, "ch"):
		return fmt.Sprintf("%d %ses", n, singular)
	case strings.HasSuffix(singular, "y") && !strings.ContainsAny(singular[len(singular)-2:len(singular)-1], "aeiou"):
		return fmt.Sprintf("%d %sies", n, singular[:len(singular)-1])
	}
	return fmt.Sprintf("%d %ss", n, singular)
}

// Duration writes d the way people read it: 850ms, 1.2s, 2m03s, 1h05m.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + Duration(-d)
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Ago says how long before now t was: "12s ago", "3m05s ago"; "never"
// for the zero time.
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return Duration(now.Sub(t)) + " ago"
}

// Counts writes a map of counts as "503 Service Unavailable: 84, 502 Bad
// Gateway: 1", largest first, instead of Go's map[...] syntax.
func Counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// List writes items as "a, b and c"; "none" when there are none.
func List(items []string) string {
	switch len(items) {
	case 0:
		return "none"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// Rows writes rows as an indented JSON array when format is json;
// otherwise none when there are no rows, else a table: header, then one
// line of tab-separated cells per row.
func Rows[T any](w io.Writer, format string, rows []T, none, header string, line func(T) string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, none)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, line(r))
	}
	return tw.Flush()
}
