// Command migrator applies database migrations requested on
// cutover.migration.cmd, after a verified snapshot, and rolls them back.
//
//	migrator --nats nats://127.0.0.1:4222
//
// It runs until SIGINT or SIGTERM. A migration in progress is finished
// before it exits: stopping one midway would leave its database dirty.
package main
