# cutover: two commands for a new user.
#   make demo   upgrade three real containers v1 -> v2 on the local Docker engine
#   make test   every module's tests, gofmt and go vet, the Docker end-to-end tests, each fuzz target briefly
#   make fuzz   every fuzz target for FUZZTIME (default 60s) each
#   make demo-zero-downtime   3 replicas behind a real HAProxy rolled v1 -> v2 under load, with and without drain
#   make demo-expand-contract v1 and v2 share one SQLite database through expand -> roll -> contract under load
#   make demo-openstack      an identity service on MariaDB: db-sync expand/migrate/contract under load, then a failing db-sync restored
#   make demo-cluster        3 nats-server processes, every service its own process; a server and the leading planner killed mid-upgrade
SHELL := /bin/bash
MODULES := events inventory harness services/planner services/migrator services/node-updater services/auditor services/lb-agent cmd/cutover
GO ?= go
TEST_TIMEOUT ?= 12m
# How long `make test` runs each fuzz target, and `make fuzz`.
FUZZTIME_SHORT ?= 5s
FUZZTIME ?= 60s
# The PostgreSQL server scripts/postgres-up.sh starts (or finds) for the tests.
PG_URL ?= postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable
# The MariaDB server scripts/mariadb-up.sh starts (or finds) for the tests.
MARIADB_URL ?= mysql://cutover:cutover@127.0.0.1:3306/cutover

.PHONY: all build nats-server demo-cluster demo demo-zero-downtime demo-expand-contract demo-openstack test fuzz fuzz-short fmt-check vet test-modules docker-check deps postgres mariadb haproxy chromium bench clean

all: build

BINARIES := cmd/cutover services/planner/cmd/planner services/migrator/cmd/migrator services/node-updater/cmd/node-updater services/auditor/cmd/auditor services/lb-agent/cmd/lb-agent

# One line per binary: the first build downloads and compiles every
# dependency (about 3 minutes on 2 cores), later ones take seconds.
build:
	@mkdir -p bin
	@n=0; total=$(words $(BINARIES)); for b in $(BINARIES); do n=$$((n+1)); start=$$SECONDS; \
	  printf 'build %d/%d  bin/%s ... ' $$n $$total "$$(basename $$b)"; \
	  $(GO) build -o bin/ ./$$b || exit 1; echo "$$((SECONDS-start))s"; done

demo: build
	./bin/cutover demo

# nats-server at the version in go.mod (events/go.mod), for make demo-cluster.
nats-server:
	@mkdir -p bin
	@printf 'build bin/nats-server ... '; start=$$SECONDS; cd events && $(GO) build -o ../bin/nats-server github.com/nats-io/nats-server/v2 && echo "$$((SECONDS-start))s"

demo-cluster: build nats-server
	./bin/cutover demo-cluster --bin bin

demo-zero-downtime: build haproxy
	./bin/cutover demo-zero-downtime

demo-expand-contract: build haproxy
	./bin/cutover demo-expand-contract

demo-openstack: build haproxy mariadb
	./bin/cutover demo-openstack --mariadb $(MARIADB_URL)

test: fmt-check vet docker-check deps test-modules fuzz-short

# Every fuzz target (func Fuzz... in any module) briefly, after the seed
# corpora in testdata/fuzz ran as ordinary tests in test-modules.
fuzz-short:
	@FUZZTIME=$(FUZZTIME_SHORT) MODULES="$(MODULES)" ./scripts/fuzz.sh

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=10m for a long run).
fuzz:
	@FUZZTIME=$(FUZZTIME) MODULES="$(MODULES)" ./scripts/fuzz.sh

# What the tests need that a fresh machine lacks: a running PostgreSQL and
# MariaDB (installed, not started), HAProxy and Chromium (Debian packages).
deps: postgres mariadb haproxy chromium

postgres:
	@./scripts/postgres-up.sh

mariadb:
	@./scripts/mariadb-up.sh

haproxy:
	@./scripts/install-haproxy.sh

chromium:
	@./scripts/install-chromium.sh || echo "chromium: NOT INSTALLED; the dashboard's browser test is SKIPPED (run scripts/install-chromium.sh as root)"

fmt-check:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi; echo "gofmt: clean"

# Each module must build and vet on its own (GOWORK=off), as a distributed
# deployment builds it.
vet:
	@set -e; for m in $(MODULES); do echo "go vet $$m (GOWORK=off)"; (cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...); done

docker-check:
	@if docker info >/dev/null 2>&1; then echo "docker: engine reachable; the Docker end-to-end tests run"; \
	else echo "docker: NO ENGINE REACHABLE; the Docker end-to-end tests are SKIPPED (start Docker to run them)"; fi

# Each module's tests with -v, filtered by scripts/test-progress.awk: every
# top-level test is shown as it starts and ends, so a long package
# (node-updater, cmd/cutover: minutes) is never silent; a failure shows
# its whole output. TEST_VERBOSE=1 shows the raw go test -v output.
test-modules:
	@set -eo pipefail; for m in $(MODULES); do echo "== go test $$m"; start=$$SECONDS; \
	  if [ -n "$(TEST_VERBOSE)" ]; then filter=cat; else filter="awk -f $(CURDIR)/scripts/test-progress.awk"; fi; \
	  (cd $$m && CUTOVER_TEST_POSTGRES="$(PG_URL)" CUTOVER_TEST_MARIADB="$(MARIADB_URL)" $(GO) test -v -count=1 -timeout $(TEST_TIMEOUT) ./... 2>&1 | $$filter); \
	  echo "== $$m: $$((SECONDS-start))s"; done

# Every benchmark with its baseline, one BENCH line per result
# (scripts/bench.sh; BENCH_FLEET=100 for a quick run without the big fleets).
bench: postgres mariadb haproxy
	CUTOVER_TEST_POSTGRES="$(PG_URL)" CUTOVER_TEST_MARIADB="$(MARIADB_URL)" ./scripts/bench.sh

clean:
	rm -rf bin .cutover-data .bench
