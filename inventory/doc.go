// Package inventory reads and validates cutover inventories: the YAML file
// that says which nodes exist, which roles they play, which services each
// role runs (roles compose services, as TripleO's composable roles do) and,
// per service, its containers and rollout settings.
//
// It is pure: no I/O beyond reading the file, so `cutover plan`, the planner
// and the node-updater (adoption by name) share it; it is a module of its own
// beside events so that no service module requires another. The kolla
// subpackage converts a kolla-ansible INI inventory into this format; yamlpos
// turns YAML errors into file:line messages for it and the planner's release
// manifests.
package inventory
