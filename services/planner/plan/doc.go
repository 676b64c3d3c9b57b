// Package plan computes explainable rollout plans: for a release and a
// fleet (an inventory file, or what the node-updaters report), which
// container changes on which node and why, whether each service is updated
// or upgraded (migrations), and the phases that carry it out: pre-checks →
// expand migrations → rolling waves in dependency order → contract
// migrations → verify.
//
// Build is pure and deterministic: the same inputs give byte-identical
// JSON and text, which `cutover plan` prints and the planner executes.
package plan
