DROP TABLE keypairs;
