CREATE INDEX instances_active ON instances (project_id) WHERE vm_state = 'active';
