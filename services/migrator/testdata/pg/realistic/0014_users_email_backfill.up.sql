UPDATE users SET email = lower(replace(name, ' ', '.')) || '@example.com' WHERE email IS NULL;
