CREATE UNIQUE INDEX tags_artifact_name ON tags (artifact_id, name);
UPDATE settings SET value = 'v190' WHERE name = 'schema';
