DROP INDEX instances_active;
