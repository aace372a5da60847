#!/usr/bin/env bash
# Start (or stop) a throw-away PostgreSQL cluster on loopback for the tests and benchmarks.
# Usage: scripts/pg.sh start|stop   — prints the SQLAlchemy URL on start.
set -euo pipefail
PGPORT=${XUELIANG_PG_PORT:-55432}
PGDIR=${XUELIANG_PG_DIR:-/tmp/xueliang-pg-$PGPORT}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$BIN" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
RUN=()
if [ "$(id -u)" = 0 ]; then RUN=(runuser -u postgres --); fi
case "${1:-start}" in
  start)
    if [ ! -f "$PGDIR/PG_VERSION" ]; then
      rm -rf "$PGDIR"; mkdir -p "$PGDIR"
      [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
      "${RUN[@]}" "$BIN/initdb" -D "$PGDIR" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
      "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/log" -w -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
    fi
    echo "postgresql+asyncpg://postgres@127.0.0.1:$PGPORT/postgres"
    ;;
  stop)
    "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDIR" -m fast stop >/dev/null 2>&1 || true
    ;;
esac
