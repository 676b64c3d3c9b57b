-- The first statement works and commits (DDL), the second fails: the file stops midway.
CREATE TABLE audit_log (id BIGINT PRIMARY KEY, line TEXT);
INSERT INTO missing_table (x) VALUES (1);
