CREATE TABLE artifacts (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects (id), digest VARCHAR(255) NOT NULL);
CREATE INDEX artifacts_project ON artifacts (project_id);
