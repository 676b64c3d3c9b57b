ALTER TABLE instances ADD COLUMN flavor_id SMALLINT REFERENCES flavors (id);
UPDATE instances SET flavor_id = 1 WHERE flavor_id IS NULL;
