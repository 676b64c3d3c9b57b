// Package metrics exposes the auditor's Prometheus metrics.
//
// A Metrics is an auditor.Observer: the auditor hands it each event the
// first time it stores it, so every counter counts an event once however
// often JetStream redelivers it. From those events it keeps
//
//	cutover_upgrades{state}                         gauge: upgrades by current state
//	cutover_container_replacements_total{result}    replaced, unchanged, reverted
//	cutover_interruption_seconds                    histogram of ContainerReplaced.InterruptionMs
//	cutover_rollbacks_total{result}                 requested, completed, failed
//	cutover_events_total{type}                      stored events by type ("other" outside the catalog)
//	cutover_rejected_events_total                   dev.cutover.event.rejected events
//
// At scrape time it also reads, bounded by ScrapeTimeout,
//
//	cutover_consumer_pending_messages{consumer}     NumPending of every durable consumer of CUTOVER
//	cutover_consumer_ack_pending_messages{consumer} NumAckPending of the same
//	cutover_consumer_scrape_errors_total            listings that failed or timed out
//
// and, when a verdict source is set, the health watcher's counters
// (cutover_verdict_*), and when a webhook source is set the notifier's
// (cutover_webhook_*). Handler serves them with the Go runtime and process
// collectors in the text exposition format; cmd/auditor mounts it on
// GET /metrics of the dashboard.
//
// What runs where: inside the auditor process (cmd/auditor or `cutover dev`);
// nothing runs in the background: the JetStream listing happens on scrape.
package metrics
