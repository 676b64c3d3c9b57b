ALTER TABLE instances DROP COLUMN flavor_id;
