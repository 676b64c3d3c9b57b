DROP INDEX cutover_events_upgrade_seq;
ALTER TABLE cutover_events DROP COLUMN seq;
