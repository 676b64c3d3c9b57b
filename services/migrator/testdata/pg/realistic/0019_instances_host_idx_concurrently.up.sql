CREATE INDEX CONCURRENTLY instances_host ON instances (host) WHERE host IS NOT NULL;
