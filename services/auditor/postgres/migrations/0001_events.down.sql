DROP TABLE IF EXISTS cutover_events;
