// Package upgrades is the CLI's read side of upgrades: it finds an upgrade
// from what an operator typed and follows its events as they arrive. The
// commands (cutover watch, status, apply, ...) and the scenarios use it.
package upgrades
