CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO settings (name, value) VALUES ('schema', 'v0');
