-- The file commits its first statement itself, then fails: SQLite cannot
-- undo audit_log, so only the snapshot brings the database back.
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, line TEXT);
COMMIT;
BEGIN;
INSERT INTO missing_table (x) VALUES (1);
