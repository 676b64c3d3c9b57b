INSERT INTO quotas (project_id, resource, hard_limit)
SELECT p.id, r.resource, r.lim FROM projects p
CROSS JOIN (VALUES ('instances', 10), ('cores', 20), ('ram_mb', 51200)) AS r(resource, lim)
ON CONFLICT DO NOTHING;
