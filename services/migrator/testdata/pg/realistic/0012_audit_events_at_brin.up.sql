CREATE INDEX audit_events_at ON audit_events USING brin (at);
