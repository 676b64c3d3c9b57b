#!/usr/bin/env bash
# postgres-up.sh: make sure a PostgreSQL 15 server accepts connections on
# 127.0.0.1:5432 for cutover's tests and benchmarks, and that the role and
# database "cutover" exist on it.
#
# Idempotent: when a server already answers on 127.0.0.1:5432 it only makes
# sure the role exists (when it can) and says so. Otherwise it initialises a
# cluster of its own in $CUTOVER_PG_DIR (default /tmp/cutover-pg), trust
# authentication on 127.0.0.1 only, starts it with pg_ctl, waits until it is
# ready and creates the role "cutover" (superuser: the migrator's tests create
# and drop databases) and the database "cutover".
#
# Run as root, the cluster belongs to the postgres user; run as anyone else,
# to that user. Prints one line saying what it did; exits non-zero with the
# reason on failure. Stop the server with:
#   pg_ctl -D "${CUTOVER_PG_DIR:-/tmp/cutover-pg}/data" stop
# The URL tests read:
#   CUTOVER_TEST_POSTGRES=postgres://cutover@127.0.0.1:5432/postgres?sslmode=disable
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DIR=${CUTOVER_PG_DIR:-/tmp/cutover-pg}
DATA=$DIR/data
LOG=$DIR/postgres.log
HOST=127.0.0.1
PORT=5432
ROLE=cutover

die() { echo "postgres-up: $*" >&2; exit 1; }

[ -x "$PGBIN/pg_ctl" ] || die "no PostgreSQL 15 at $PGBIN (install it: apt-get install postgresql-15, or set PGBIN)"

# as_owner runs a command as the owner of the cluster.
if [ "$(id -u)" = 0 ]; then
	OWNER=postgres
	id "$OWNER" >/dev/null 2>&1 || die "user $OWNER does not exist; install postgresql-15 or run this script as a non-root user"
	as_owner() { runuser -u "$OWNER" -- "$@"; }
else
	OWNER=$(id -un)
	as_owner() { "$@"; }
fi

ensure_role() {
	# Connects as the cluster's superuser when it can (our own cluster); on a
	# foreign server this may fail, which is reported but not fatal.
	local su=$1
	"$PGBIN/psql" -h "$HOST" -p "$PORT" -U "$su" -d postgres -v ON_ERROR_STOP=1 -qAt >/dev/null 2>&1 <<SQL
SELECT 'CREATE ROLE $ROLE LOGIN SUPERUSER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE')\gexec
SELECT 'CREATE DATABASE $ROLE OWNER $ROLE' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$ROLE')\gexec
SQL
}

if "$PGBIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2; then
	if "$PGBIN/psql" -h "$HOST" -p "$PORT" -U "$ROLE" -d postgres -qAtc 'SELECT 1' >/dev/null 2>&1; then
		echo "postgres-up: a server already accepts connections on $HOST:$PORT with role $ROLE; nothing to do"
		exit 0
	fi
	ensure_role postgres || die "a server answers on $HOST:$PORT but role $ROLE cannot connect and could not be created; create it (CREATE ROLE $ROLE LOGIN SUPERUSER) or stop that server"
	echo "postgres-up: a server already accepts connections on $HOST:$PORT; created role $ROLE on it"
	exit 0
fi

mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown "$OWNER" "$DIR"
did="started the existing cluster in $DATA"
if [ ! -s "$DATA/PG_VERSION" ]; then
	as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
		die "initdb in $DATA failed; see $DIR/initdb.log"
	# Trust on 127.0.0.1 only; no unix socket in a directory we may not own.
	cat >"$DATA/pg_hba.conf" <<HBA
host all all 127.0.0.1/32 trust
HBA
	cat >>"$DATA/postgresql.conf" <<CONF
# cutover test server (scripts/postgres-up.sh)
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = ''
fsync = on
max_connections = 100
shared_buffers = 256MB
CONF
	[ "$(id -u)" = 0 ] && chown "$OWNER" "$DATA/pg_hba.conf" "$DATA/postgresql.conf"
	did="initialised a cluster in $DATA and started it"
fi

as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null 2>&1 ||
	die "pg_ctl start on $DATA failed (is port $PORT taken by something that is not PostgreSQL?); see $LOG"

for _ in $(seq 1 60); do
	"$PGBIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 1 && break
	sleep 0.5
done
"$PGBIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 1 || die "server in $DATA started but does not accept connections on $HOST:$PORT after 30s; see $LOG"

ensure_role postgres || die "create role $ROLE on $HOST:$PORT failed; see $LOG"
echo "postgres-up: $did on $HOST:$PORT (log $LOG); role and database $ROLE ready"
