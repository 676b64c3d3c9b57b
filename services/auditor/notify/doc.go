// Package notify posts chosen cutover events to webhooks.
//
// A Notifier is an auditor.Observer: the auditor hands it each event the
// first time it stores it, and Observe only filters and enqueues, so a slow
// or dead endpoint never slows the auditor's consumer. Each URL has its own
// bounded queue and one worker that POSTs the events in the order they were
// stored (per-URL ordering), each as its CloudEvent in structured JSON mode
// (Content-Type: application/cloudevents+json), the body the auditor stored.
//
// A full queue drops its oldest event and counts it (Stats.Dropped): the
// newest state of an upgrade matters more than an old step of it. A failed
// POST (network error, timeout, 408, 429 or 5xx) is retried with capped
// exponential backoff until it succeeds or GiveUpAfter has passed since the
// first attempt (Stats.GaveUp); any other 4xx is not retried (Stats.Rejected).
// The next event of that URL waits meanwhile, which is what keeps the order.
//
// What runs where: inside the auditor process, one goroutine per URL, from
// Open to Close.
package notify
