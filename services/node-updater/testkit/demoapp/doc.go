// Command demoapp is the demo service that cutover's tests and `make demo`
// run inside containers. One static binary serves every test case: its
// behaviour is chosen at start-up from environment variables, which the test
// kit bakes into each image's config.
//
// Environment:
//
//	DEMO_VERSION  version reported by GET / (default "dev")
//	DEMO_LISTEN   listen address (default ":8080")
//	DEMO_DATA     data directory, usually a volume (default "/data")
//	DEMO_MODE     healthy (default), never-healthy, crash, slow-start,
//	              workload-host, or vm (internal: a child of workload-host)
//	DEMO_SLOW     how long slow-start stays unhealthy (default 5s)
//
// HTTP API:
//
//	GET  /         {"version":..., "hostname":..., "mode":...}
//	GET  /healthz  200 "ok", or 503 while unhealthy
//	GET  /data     contents of $DEMO_DATA/records.log
//	POST /data     appends the request body as one line to records.log
//
// `demoapp health` probes /healthz on the local listener and exits 0 when it
// answers 200; images use it as their Docker HEALTHCHECK because they carry
// no shell.
package main
