#!/usr/bin/env bash
# The Debian anchor of issue 18, for benchmarks only (not part of the project's setup):
# Kamailio 5.6 from Debian (packages kamailio, kamailio-sqlite-modules), run by
# bench/anchors/storm_kamailio.py.
# ZLMediaKit is not built by anything in this project (README.md says why and what was measured).
#
#   bench/anchors/setup.sh
#
# Needs root (or sudo) for apt-get.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

$SUDO apt-get install -y kamailio kamailio-sqlite-modules  # the second for --kamailio-db sqlite
# the package's own service is not wanted: the bench starts its own Kamailio
$SUDO systemctl disable --now kamailio 2>/dev/null || true
kamailio -c -f "$HERE/kamailio.cfg" -Y "$(mktemp -d)" >/dev/null 2>&1 \
    && echo "kamailio: $(kamailio -v | head -1); bench/anchors/kamailio.cfg parses"
