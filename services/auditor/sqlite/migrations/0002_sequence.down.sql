DROP INDEX events_upgrade_seq;
ALTER TABLE events DROP COLUMN seq;
