CREATE TABLE settings (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO settings (name, value) VALUES ('schema', 'v0');
