-- Every event the auditor received, once per id. Times are Unix nanoseconds (UTC),
-- like the SQLite store, so both sort and round-trip identically; event holds the
-- CloudEvent as structured JSON, byte for byte as received (TEXT, not JSONB,
-- which would reorder keys).
CREATE TABLE cutover_events (
    id          TEXT   NOT NULL PRIMARY KEY,
    type        TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    subject     TEXT   NOT NULL DEFAULT '',
    upgradeid   TEXT   NOT NULL DEFAULT '',
    nodeid      TEXT   NOT NULL DEFAULT '',
    causationid TEXT   NOT NULL DEFAULT '',
    time        BIGINT NOT NULL,
    stored_at   BIGINT NOT NULL,
    event       TEXT   NOT NULL
);

CREATE INDEX cutover_events_upgrade_time ON cutover_events (upgradeid, time, id);
CREATE INDEX cutover_events_upgrade_type ON cutover_events (upgradeid, type, time, id);
CREATE INDEX cutover_events_node_time ON cutover_events (nodeid, time, id);
CREATE INDEX cutover_events_type_time ON cutover_events (type, time);
CREATE INDEX cutover_events_causation ON cutover_events (causationid);
CREATE INDEX cutover_events_time ON cutover_events (time, id);
