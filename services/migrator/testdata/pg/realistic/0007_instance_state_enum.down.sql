DROP TYPE vm_state;
