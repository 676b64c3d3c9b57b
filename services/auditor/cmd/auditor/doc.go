// Command auditor records every cutover event in a history (SQLite, or
// PostgreSQL with --store postgres://…), judges health signals during watch
// windows (publishing verdicts and rollback requests) under the policies of
// --policy and --policies, posts chosen events to --webhook URLs and, with
// --http, serves the live dashboard, the JSON API and Prometheus /metrics.
//
//	auditor --nats nats://127.0.0.1:4222 --store ./cutover-audit.db --http 127.0.0.1:8080 \
//	    --policy web:consecutive=3,ratio=0.5,min_signals=4,max_interruption=5s,action=rollback \
//	    --webhook https://alerts.example/cutover
//
// It runs until SIGINT or SIGTERM.
package main
