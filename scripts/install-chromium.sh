#!/usr/bin/env bash
# install-chromium.sh installs Debian's chromium for the auditor's headless
# browser test (services/auditor: TestDashboardLiveInChromium). It does nothing
# when a chromium is already on PATH, so `make test` can run it every time.
# Needs root (or sudo) the first time; the test skips with a message when
# chromium is absent.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	echo "chromium: $(command -v chromium) already installed"
	exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-chromium: not root and no sudo; install Debian's chromium package by hand (apt-get install chromium)" >&2
		exit 1
	fi
fi

$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
echo "chromium: $(command -v chromium) installed"
