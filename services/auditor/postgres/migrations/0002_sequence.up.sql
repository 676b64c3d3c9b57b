-- The stream sequence of each event: the order of the history. An event's own
-- time comes from its producer's clock (a client may run ahead or leave it
-- out), so it is shown but never orders anything. Rows stored before this
-- column have 0 and keep their time order among themselves.
ALTER TABLE cutover_events ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX cutover_events_upgrade_seq ON cutover_events (upgradeid, seq, time, id);
