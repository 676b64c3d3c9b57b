CREATE INDEX projects_owner ON projects (owner_id);
