package migrator

import (
	"strings"
	"unicode"
)

// txControl are the statements that end, open or step outside the
// transaction a driver runs a migration file in: after one of them ran, a
// failure later in the file no longer undoes what came before it.
var txControl = map[string]bool{
	"BEGIN": true, "COMMIT": true, "END": true, "ROLLBACK": true, "START": true,
	"SAVEPOINT": true, "RELEASE": true, "VACUUM": true, "ABORT": true,
}

// Transactional reports whether a migration file that failed was undone
// entirely by the database, given that its driver runs each file in one
// transaction (golang-migrate wraps SQLite files in BEGIN/COMMIT; PostgreSQL
// runs a string of statements as one implicit transaction). It is false when
// a statement of sqlText controls transactions itself (BEGIN, COMMIT, END,
// ROLLBACK, SAVEPOINT, VACUUM, ...) or contains one of the words nonAtomic
// (e.g. CONCURRENTLY for PostgreSQL: CREATE INDEX CONCURRENTLY runs outside
// any transaction and leaves an invalid index behind when it fails).
//
// It reads the SQL coarsely (comments, quoted strings and PostgreSQL dollar
// quotes are skipped; BEGIN ... END inside CREATE TRIGGER is a trigger body)
// and errs on the side of false: a false answer only makes the migrator
// restore the snapshot instead of running down files.
func Transactional(sqlText string, nonAtomic ...string) bool {
	unsafe := map[string]bool{}
	for _, w := range nonAtomic {
		unsafe[strings.ToUpper(w)] = true
	}
	for _, stmt := range statements(sqlText) {
		if len(stmt) == 0 {
			continue
		}
		if txControl[stmt[0]] {
			return false
		}
		for _, w := range stmt {
			if unsafe[w] {
				return false
			}
		}
	}
	return true
}

// Statements returns how many statements sqlText holds, read as
// Transactional reads it (comments and quoted text skipped, a trigger body
// one statement). MySQL commits each DDL statement on its own, so its driver
// counts a failed file as undone only when it holds a single statement.
func Statements(sqlText string) int {
	n := 0
	for _, stmt := range statements(sqlText) {
		if len(stmt) > 0 {
			n++
		}
	}
	return n
}

// statements splits SQL into statements, each as its upper-cased words
// (identifiers and keywords), without comments or quoted text.
func statements(s string) [][]string {
	var (
		out     [][]string
		cur     []string
		word    strings.Builder
		trigger bool // the statement is CREATE ... TRIGGER
		depth   int  // BEGIN/CASE ... END nesting inside a trigger body
	)
	flush := func() {
		if word.Len() == 0 {
			return
		}
		w := strings.ToUpper(word.String())
		word.Reset()
		if len(cur) > 0 && cur[0] == "CREATE" && w == "TRIGGER" {
			trigger = true
		}
		if trigger {
			switch w {
			case "BEGIN", "CASE":
				depth++
			case "END":
				depth--
			}
		}
		cur = append(cur, w)
	}
	end := func() {
		flush()
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur, trigger, depth = nil, false, 0
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			flush()
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			flush()
			j := strings.Index(s[i+2:], "*/")
			if j < 0 {
				i = len(s)
			} else {
				i += j + 3
			}
		case c == '\'' || c == '"' || c == '`':
			flush()
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				i = len(s)
			} else {
				i += j + 1
			}
		case c == '$' && word.Len() == 0:
			// A dollar quote $tag$ ... $tag$ (PostgreSQL function bodies).
			j := strings.IndexByte(s[i+1:], '$')
			tag := ""
			if j >= 0 {
				tag = s[i : i+j+2]
			}
			if j < 0 || strings.IndexFunc(tag[1:len(tag)-1], func(r rune) bool { return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') }) >= 0 {
				continue // a parameter such as $1
			}
			k := strings.Index(s[i+len(tag):], tag)
			if k < 0 {
				i = len(s)
			} else {
				i += len(tag) + k + len(tag) - 1
			}
		case c == ';':
			flush()
			if trigger && depth > 0 {
				continue
			}
			end()
		case c == '_' || unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || c >= 0x80:
			word.WriteByte(c)
		default:
			flush()
		}
	}
	end()
	return out
}
