DELETE FROM quotas WHERE (resource, hard_limit) IN (('instances', 10), ('cores', 20), ('ram_mb', 51200));
