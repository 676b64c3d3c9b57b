ALTER TABLE artifacts ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE settings SET value = 'v10' WHERE name = 'schema';
