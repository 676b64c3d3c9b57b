-- The stream sequence of each event: the order of the history. An event's own
-- time comes from its producer's clock (a client may run ahead or leave it
-- out), so it is shown but never orders anything. Rows stored before this
-- column have 0 and keep their time order among themselves.
ALTER TABLE events ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX events_upgrade_seq ON events (upgradeid, seq, time, id);
