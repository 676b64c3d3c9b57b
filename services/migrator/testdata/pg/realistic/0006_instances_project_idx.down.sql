DROP INDEX instances_project;
