#!/usr/bin/env bash
# Run the benchmarks (docs/performance.md says what each measures and on what machine): all of
# them with their own defaults, or those named (`scripts/bench.sh sip_storm media`). Each prints
# `name: value unit` lines. Benchmarks are not tests: nothing here fails on a figure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
export XUELIANG_PG_PORT=${XUELIANG_PG_PORT:-55432}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in bench/*.py; do
    n=$(basename "$f" .py)
    [ "$n" = fuzz ] && continue   # a fuzzing run, not a figure: bench/fuzz.py --help
    names+=("$n")
  done
fi
for n in "${names[@]}"; do
  echo "== bench/$n.py"
  .venv/bin/python "bench/$n.py" || echo "bench/$n.py failed (exit $?)"
done
