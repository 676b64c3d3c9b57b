DROP TABLE flavors;
