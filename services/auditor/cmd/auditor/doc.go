// Command auditor records every cutover event in a SQLite history, judges
// health signals during watch windows (publishing verdicts and rollback
// requests) and, with --http, serves the live dashboard and the JSON API.
//
//	auditor --nats nats://127.0.0.1:4222 --store ./cutover-audit.db --http 127.0.0.1:8080 --watch 10s --post-watch 30s
//
// It runs until SIGINT or SIGTERM.
package main
