CREATE TYPE vm_state AS ENUM ('building', 'active', 'stopped', 'error', 'deleted');
