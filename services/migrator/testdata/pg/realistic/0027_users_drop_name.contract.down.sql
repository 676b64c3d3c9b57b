ALTER TABLE users ADD COLUMN name TEXT;
UPDATE users SET name = display_name;
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
ALTER TABLE users ALTER COLUMN display_name DROP NOT NULL;
CREATE FUNCTION users_sync_display_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.display_name IS NULL THEN NEW.display_name := NEW.name; END IF;
  IF NEW.name IS NULL THEN NEW.name := NEW.display_name; END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER users_sync_display_name BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION users_sync_display_name();
