// Package docker implements the node-updater's Runtime with the Docker
// Engine API (github.com/moby/moby/client), for engines speaking API 1.41
// (Docker 20.10) or later; the client negotiates the version.
//
// What runs where: the node-updater process on each node talks to its local
// engine (the socket or DOCKER_HOST). Nothing here keeps state: every call
// asks the engine. The updater's replacement logic lives in the parent
// package; this package only translates, and derives a replacement
// container's configuration from the old container and its image
// (replacementConfig), which is pure and unit-tested without an engine.
package docker
