DROP TRIGGER instances_touch ON instances;
ALTER TABLE instances DROP COLUMN updated_at;
