CREATE INDEX instances_project ON instances (project_id);
