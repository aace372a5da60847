#!/usr/bin/env bash
# The whole check, from a fresh clone: setup, lint, types, and the test suite against SQLite and
# a throw-away PostgreSQL cluster on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== layers (import-linter contracts in pyproject.toml)"
.venv/bin/lint-imports --no-cache
echo "== console: types and message keys (web/test)"
(cd web && npm run -s typecheck && npm test --silent)
echo "== PostgreSQL (throw-away cluster)"
export XUELIANG_TEST_PG_URL
XUELIANG_TEST_PG_URL=$(scripts/pg.sh start)
trap 'scripts/pg.sh stop' EXIT
echo "== what tests would skip without (setup installs it; here its absence is a failure)"
for need in /usr/bin/chromium "$(command -v sipp)" "$(command -v ffmpeg)" "$(command -v redis-server)" \
            "$(command -v systemd-analyze)" .venv/bin/weed \
            src/xueliang/static/console/index.html "$(ls src/xueliang/media/_udp_batch*.so 2>/dev/null)"; do
  [ -n "$need" ] && [ -e "$need" ] || { echo "missing: ${need:-sipp, ffmpeg, redis-server, systemd-analyze or the recvmmsg module (scripts/build_native.py)}"; exit 1; }
done
.venv/bin/python -c "import atheris, playwright.sync_api, av; av.codec.Codec('libx265', 'w')"
echo "== pytest"
# Bytecode caches written and reused even where the environment asks for none (container images
# often set PYTHONDONTWRITEBYTECODE=1): without them every pytest process (each worker, each part)
# rewrites the asserts of all ~250 test modules again to collect them (14.5 s against 7 s here),
# and each platform process a test starts compiles the platform again (about 0.5 s a start).
unset PYTHONDONTWRITEBYTECODE
# The console's end-to-end tests run the demo with simulated devices, so video really plays.
export XUELIANG_E2E_DEVICES=${XUELIANG_E2E_DEVICES:-1}
if [ $# -eq 0 ]; then
  # Three workers on the machine's two cores (XUELIANG_TEST_WORKERS to change): with two, a
  # quarter of the CPU sat idle while tests waited on timers, subprocesses and the browser; a
  # third worker fills it (2026-12-06, the same 523 tests back to back, twice, in both
  # orders: 338 and 344 s on two, 294 and 285 s on three). A test file per worker at a time;
  # then, alone, the tests marked `serial` (several platform processes each, or counting on the
  # timing of an unloaded machine: tests/conftest.py).
  workers=${XUELIANG_TEST_WORKERS:-3}
  rc=0
  .venv/bin/python -m pytest -p no:randomly -n "$workers" --dist loadfile \
    -m "not serial" --durations=25 || rc=$?
  echo "== pytest: the serial part"
  .venv/bin/python -m pytest -p no:randomly -m serial --durations=10 || rc=$?
  [ "$rc" = 0 ] || exit "$rc"
else
  .venv/bin/python -m pytest -p no:randomly --durations=25 "$@"
fi
if [ $# -eq 0 ] && [ -n "$(ls src/xueliang/gb28181/sip/*.so 2>/dev/null)" ]; then
  # The suite above ran the mypyc-compiled SIP and media modules; their sources must pass on
  # their own too (the media ones by their unit tests only: the end-to-end tests are long).
  echo "== pytest: the SIP stack, registrar and media hot path as pure Python"
  XUELIANG_PURE_PYTHON=1 .venv/bin/python -m pytest -p no:randomly -n "$workers" tests/gb28181 tests/sim/test_signalling.py \
    tests/media/test_rtp.py tests/media/test_ps.py tests/media/test_ps_rtp_in.py tests/media/test_nal.py tests/media/test_fmp4.py \
    tests/media/test_flv.py tests/media/test_udp_batch.py tests/media/test_rtp_server.py tests/media/test_hub.py \
    tests/media/test_ps_rtp_out.py tests/api/test_live_send.py tests/test_native.py tests/test_values.py tests/test_bus_batch.py tests/test_compiled_async.py
fi
