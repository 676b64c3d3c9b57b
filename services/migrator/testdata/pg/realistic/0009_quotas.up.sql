CREATE TABLE quotas (
  project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  resource TEXT NOT NULL,
  hard_limit INTEGER NOT NULL CHECK (hard_limit >= -1),
  PRIMARY KEY (project_id, resource)
);
