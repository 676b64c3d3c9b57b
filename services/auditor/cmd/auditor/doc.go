// Command auditor records every cutover event in a SQLite history and,
// with --http, serves it as a JSON API.
//
//	auditor --nats nats://127.0.0.1:4222 --store ./cutover-audit.db --http 127.0.0.1:8080
//
// It runs until SIGINT or SIGTERM.
package main
