// Package inventory reads and validates cutover inventories: the YAML file
// that says which nodes exist, which roles they play, which services each
// role runs (roles compose services, as TripleO's composable roles do) and,
// per service, its containers and rollout settings.
//
// It is pure: no I/O beyond reading the file, so `cutover plan` and the
// planner share it. The kolla subpackage converts a kolla-ansible INI
// inventory into this format.
package inventory
