"""heap.started(): the start-up heap frozen and full collections spaced out. A mass join leaves
a fast-growing long-lived heap; with CPython's default the collector scans it whole again and
again (13 full collections, a fifth of a mass join's CPU in bench/sip_handling.py
--answer-queries). Run in a child process: the collector's settings are process-wide."""

from __future__ import annotations

import json
import subprocess
import sys

GROW = """
import gc, json, sys
from xueliang import heap
if sys.argv[1] == "started":
    heap.started()
else:
    heap.freeze()
full = []
gc.callbacks.append(lambda phase, info: phase == "start" and info["generation"] == 2 and full.append(1))
kept = []
for i in range(600_000):  # ten thousand devices' state, roughly: long-lived containers, some garbage
    kept.append({"device": i, "items": [i]})
    [i, [i]]  # freed at once
print(json.dumps({"full": len(full), "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count() > 0}))
"""


def grow(mode: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", GROW, mode], capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_growing_long_lived_heap_is_scanned_whole_rarely() -> None:
    default, started = grow("freeze"), grow("started")
    assert default["frozen"] and started["frozen"]
    assert started["threshold"] == [700, 10, 100]
    # what the default does to such a heap, and what started() leaves of it
    assert default["full"] >= 5, default
    assert started["full"] <= 2, started
