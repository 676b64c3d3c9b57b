-- Every event the auditor received, once per id. Times are Unix nanoseconds (UTC),
-- so they sort as numbers; event holds the CloudEvent as structured JSON.
CREATE TABLE events (
    id          TEXT    NOT NULL PRIMARY KEY,
    type        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    subject     TEXT    NOT NULL DEFAULT '',
    upgradeid   TEXT    NOT NULL DEFAULT '',
    nodeid      TEXT    NOT NULL DEFAULT '',
    causationid TEXT    NOT NULL DEFAULT '',
    time        INTEGER NOT NULL,
    stored_at   INTEGER NOT NULL,
    event       TEXT    NOT NULL
);

CREATE INDEX events_upgrade_time ON events (upgradeid, time, id);
CREATE INDEX events_upgrade_type ON events (upgradeid, type, time, id);
CREATE INDEX events_node_time ON events (nodeid, time, id);
CREATE INDEX events_type_time ON events (type, time);
CREATE INDEX events_causation ON events (causationid);
CREATE INDEX events_time ON events (time, id);
