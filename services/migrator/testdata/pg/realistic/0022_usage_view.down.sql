DROP VIEW project_usage;
