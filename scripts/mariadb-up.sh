#!/usr/bin/env bash
# mariadb-up.sh: make sure a MariaDB server (Debian's mariadb-server 10.11,
# the version Kolla ships) accepts connections on 127.0.0.1:3306 for
# cutover's tests, benchmarks and demo-openstack, and that the user and
# database "cutover" exist on it.
#
# Idempotent: when a server already answers on 127.0.0.1:3306 and the user
# cutover can log in, it does nothing and says so. Otherwise it initialises a
# data directory of its own in $CUTOVER_MARIADB_DIR (default
# /tmp/cutover-mariadb; the Debian package's own /var/lib/mysql and
# /etc/mysql are neither read nor touched: --no-defaults), starts mariadbd on
# 127.0.0.1 only, waits until it is ready and creates the user
# 'cutover'@'127.0.0.1' (password "cutover", every privilege with GRANT
# OPTION: the migrator's tests create and drop databases and users) and the
# database "cutover".
#
# Installs mariadb-server and mariadb-backup with apt-get when they are
# missing and it runs as root. Prints one line saying what it did; exits
# non-zero with the reason on failure. Stop the server with:
#   mariadb-admin --socket="${CUTOVER_MARIADB_DIR:-/tmp/cutover-mariadb}/mysqld.sock" -uroot shutdown
# The URL tests read:
#   CUTOVER_TEST_MARIADB=mysql://cutover:cutover@127.0.0.1:3306/cutover
set -euo pipefail

DIR=${CUTOVER_MARIADB_DIR:-/tmp/cutover-mariadb}
DATA=$DIR/data
SOCK=$DIR/mysqld.sock
LOG=$DIR/mariadb.log
HOST=127.0.0.1
PORT=${CUTOVER_MARIADB_PORT:-3306}
USER_NAME=cutover
PASS=cutover

die() { echo "mariadb-up: $*" >&2; exit 1; }

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
	[ "$(id -u)" = 0 ] || die "mariadb-server is not installed; run as root (apt-get install mariadb-server mariadb-backup)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-backup >"/tmp/cutover-mariadb-apt.log" 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-backup >"/tmp/cutover-mariadb-apt.log" 2>&1; } ||
		die "apt-get install mariadb-server mariadb-backup failed; see /tmp/cutover-mariadb-apt.log"
	# The package starts its own server on the default socket; stop it when
	# it would take our port.
	command -v systemctl >/dev/null 2>&1 && systemctl stop mariadb >/dev/null 2>&1 || true
fi
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

# client runs the mariadb client as user $1 (root over our socket, anyone else over TCP).
client() {
	local u=$1
	shift
	if [ "$u" = root ]; then
		mariadb --no-defaults --socket="$SOCK" -uroot "$@"
	else
		MYSQL_PWD=$PASS mariadb --no-defaults --protocol=TCP -h"$HOST" -P"$PORT" -u"$u" "$@"
	fi
}

ensure_user() {
	client root -e "
CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$PASS';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$PASS';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS $USER_NAME;" >/dev/null 2>&1
}

if client "$USER_NAME" -e 'SELECT 1' >/dev/null 2>&1; then
	echo "mariadb-up: a server already accepts connections on $HOST:$PORT with user $USER_NAME; nothing to do"
	exit 0
fi
if mariadb-admin --no-defaults --protocol=TCP -h"$HOST" -P"$PORT" --connect-timeout=2 ping >/dev/null 2>&1; then
	ensure_user || die "a server answers on $HOST:$PORT but user $USER_NAME cannot log in and could not be created over $SOCK; create it (see this script) or stop that server"
	echo "mariadb-up: a server already accepts connections on $HOST:$PORT; created user $USER_NAME on it"
	exit 0
fi

if [ "$(id -u)" = 0 ]; then
	OWNER=mysql
	id "$OWNER" >/dev/null 2>&1 || die "user $OWNER does not exist; install mariadb-server or run this script as a non-root user"
else
	OWNER=$(id -un)
fi
mkdir -p "$DIR"
[ "$(id -u)" = 0 ] && chown "$OWNER" "$DIR"
did="started the existing data directory $DATA"
if [ ! -d "$DATA/mysql" ]; then
	mariadb-install-db --no-defaults --datadir="$DATA" --user="$OWNER" --auth-root-authentication-method=socket \
		--skip-test-db >"$DIR/install.log" 2>&1 || die "mariadb-install-db in $DATA failed; see $DIR/install.log"
	did="initialised $DATA and started it"
fi

# setsid: the server outlives this script and the make that ran it.
setsid "$MARIADBD" --no-defaults --user="$OWNER" --datadir="$DATA" --socket="$SOCK" --pid-file="$DIR/mariadbd.pid" \
	--bind-address="$HOST" --port="$PORT" --log-error="$LOG" --skip-name-resolve \
	--innodb-buffer-pool-size=256M --innodb-log-file-size=256M --max-connections=300 \
	--character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci </dev/null >/dev/null 2>&1 &

for _ in $(seq 1 120); do
	mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1 && break
	sleep 0.5
done
mariadb-admin --no-defaults --socket="$SOCK" -uroot ping >/dev/null 2>&1 ||
	die "mariadbd on $DATA does not answer after 60s (is port $PORT taken by something that is not MariaDB?); see $LOG"

ensure_user || die "create user $USER_NAME on $HOST:$PORT failed; see $LOG"
client "$USER_NAME" -e 'SELECT 1' >/dev/null 2>&1 || die "user $USER_NAME cannot log in over TCP on $HOST:$PORT; see $LOG"
echo "mariadb-up: $did on $HOST:$PORT (log $LOG); user and database $USER_NAME ready"
