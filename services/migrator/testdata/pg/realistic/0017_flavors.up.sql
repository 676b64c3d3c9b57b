CREATE TABLE flavors (
  id SMALLINT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  vcpus SMALLINT NOT NULL,
  ram_mb INTEGER NOT NULL
);
INSERT INTO flavors VALUES (1, 'm1.small', 1, 2048), (2, 'm1.medium', 2, 4096), (3, 'm1.large', 4, 8192);
