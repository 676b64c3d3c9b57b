-- Fails on duplicate name lengths, outside any transaction: PostgreSQL leaves
-- the index behind, INVALID, so only the snapshot brings the database back.
CREATE UNIQUE INDEX CONCURRENTLY users_name_length ON users ((length(name)));
