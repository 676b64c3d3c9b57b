CREATE VIEW project_usage AS
SELECT p.id AS project_id, count(i.id) AS instances, coalesce(sum(f.vcpus), 0) AS cores
FROM projects p LEFT JOIN instances i ON i.project_id = p.id AND i.vm_state <> 'deleted'
LEFT JOIN flavors f ON f.id = i.flavor_id GROUP BY p.id;
