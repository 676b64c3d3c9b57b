ALTER TABLE instances ALTER COLUMN vm_state DROP DEFAULT;
ALTER TABLE instances ALTER COLUMN vm_state TYPE vm_state USING vm_state::vm_state;
ALTER TABLE instances ALTER COLUMN vm_state SET DEFAULT 'building';
