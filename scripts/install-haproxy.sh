#!/usr/bin/env bash
# Installs HAProxy from Debian's packages when it is missing. Idempotent.
# The zero-downtime tests (issue 8) drive a real HAProxy through its runtime API.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then
  echo "haproxy: $(haproxy -v | head -1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "haproxy: not installed; installing Debian's package"
$SUDO apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy >/dev/null
# The package starts a system-wide instance; cutover's tests run their own.
$SUDO systemctl disable --now haproxy >/dev/null 2>&1 || $SUDO service haproxy stop >/dev/null 2>&1 || true
echo "haproxy: installed $(haproxy -v | head -1)"
