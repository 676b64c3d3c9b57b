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
//	DEMO_DB       SQLite file of the items API (off when empty); the table
//	              items(id, name, written_by) must exist
//	DEMO_DB_SCHEMA schema generation of the items API: 1 (default) writes
//	              and reads name; 2 also writes display_name (added by an
//	              expand migration) and reads coalesce(display_name, name),
//	              and refuses to start without that column
//
// HTTP API:
//
//	GET  /         {"version":..., "hostname":..., "mode":...}
//	GET  /healthz  200 "ok", or 503 while unhealthy
//	GET  /data     contents of $DEMO_DATA/records.log
//	POST /data     appends the request body as one line to records.log
//	POST /items    {"id","name"} inserts an item (DEMO_DB only): 201 with
//	               {"id","name","written_by"}, 409 when the id exists
//	GET  /items/ID {"id","name","written_by","read_by"}, 404 when absent
//
// `demoapp health` probes /healthz on the local listener and exits 0 when it
// answers 200; images use it as their Docker HEALTHCHECK because they carry
// no shell.
package main
