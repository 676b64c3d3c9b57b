DROP TABLE instance_actions;
