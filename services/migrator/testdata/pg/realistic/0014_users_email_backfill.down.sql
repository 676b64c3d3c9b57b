UPDATE users SET email = NULL;
