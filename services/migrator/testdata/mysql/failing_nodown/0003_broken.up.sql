-- One statement: the server undoes it entirely when it fails.
INSERT INTO missing_table (x) VALUES (1);
