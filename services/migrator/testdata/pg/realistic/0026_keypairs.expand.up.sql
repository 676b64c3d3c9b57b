CREATE TABLE keypairs (
  user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  public_key TEXT NOT NULL,
  PRIMARY KEY (user_id, name)
);
