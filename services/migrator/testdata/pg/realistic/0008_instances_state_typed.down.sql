ALTER TABLE instances ALTER COLUMN vm_state DROP DEFAULT;
ALTER TABLE instances ALTER COLUMN vm_state TYPE TEXT USING vm_state::text;
ALTER TABLE instances ALTER COLUMN vm_state SET DEFAULT 'building';
