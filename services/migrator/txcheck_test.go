package migrator_test

import (
	"testing"

	"github.com/cutover-dev/cutover/services/migrator"
)

func TestTransactional(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		nonAtomic []string
		want      bool
	}{
		{"plain statements", "CREATE TABLE a (id INT);\nINSERT INTO a VALUES (1);", nil, true},
		{"explicit commit", "CREATE TABLE a (id INT);\nCOMMIT;\nINSERT INTO b VALUES (1);", nil, false},
		{"begin and end", "BEGIN;\nCREATE TABLE a (id INT);\nEND;", nil, false},
		{"vacuum", "DELETE FROM a; VACUUM;", nil, false},
		{"keyword in a comment", "-- COMMIT;\n/* BEGIN; */ CREATE TABLE a (id INT);", nil, true},
		{"keyword in a string", "INSERT INTO a (s) VALUES ('x; COMMIT; y');", nil, true},
		{"sqlite trigger body", "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = CASE WHEN n > 0 THEN n + 1 ELSE 1 END; INSERT INTO c VALUES (1); END;\nINSERT INTO a VALUES (2);", nil, true},
		{"commit after a trigger", "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nCOMMIT;", nil, false},
		{"plpgsql body", "CREATE FUNCTION f() RETURNS trigger AS $fn$\nBEGIN\n  NEW.x := 1; COMMIT;\n  RETURN NEW;\nEND;\n$fn$ LANGUAGE plpgsql;", nil, true},
		{"anonymous dollar quote", "DO $$ BEGIN PERFORM 1; END $$;", nil, true},
		{"concurrently", "CREATE INDEX CONCURRENTLY users_email ON users (email);", []string{"concurrently"}, false},
		{"concurrently allowed by the driver", "CREATE INDEX CONCURRENTLY users_email ON users (email);", nil, true},
		{"parameter is not a quote", "SELECT $1; COMMIT;", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := migrator.Transactional(tc.sql, tc.nonAtomic...); got != tc.want {
				t.Errorf("Transactional(%q) = %v, want %v", tc.sql, got, tc.want)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      int
	}{
		{"one", "ALTER TABLE a ADD COLUMN b INT;", 1},
		{"one without semicolon", "CREATE INDEX a_b ON a (b)", 1},
		{"two", "CREATE TABLE a (id INT);\nINSERT INTO a VALUES (1);", 2},
		{"comments and blank statements", "-- x; y;\n;; /* z; */ SELECT 1;", 1},
		{"semicolon in a string", "INSERT INTO a (s) VALUES ('x; y');", 1},
		{"trigger body is one", "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET n = 1; INSERT INTO c VALUES (1); END;", 1},
		{"empty", "-- nothing\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := migrator.Statements(tc.sql); got != tc.want {
				t.Errorf("Statements(%q) = %d, want %d", tc.sql, got, tc.want)
			}
		})
	}
}
