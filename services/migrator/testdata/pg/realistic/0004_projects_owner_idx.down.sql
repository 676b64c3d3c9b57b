DROP INDEX projects_owner;
