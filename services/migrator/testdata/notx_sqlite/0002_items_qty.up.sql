-- SQLite's own table-rebuild recipe, in a transaction of its own.
BEGIN;
CREATE TABLE items_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 0);
INSERT INTO items_new (id, name) SELECT id, name FROM items;
DROP TABLE items;
ALTER TABLE items_new RENAME TO items;
COMMIT;
