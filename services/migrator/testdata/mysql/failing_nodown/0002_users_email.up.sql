ALTER TABLE users ADD COLUMN email VARCHAR(255) NOT NULL DEFAULT '';
UPDATE users SET email = CONCAT(name, '@example.com');
