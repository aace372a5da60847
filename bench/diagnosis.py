"""Picture diagnosis (issue 13): accuracy on the labelled set of real footage, and throughput.

    .venv/bin/python bench/diagnosis.py [--windows 4]

Prints ``name: value unit`` lines, then the confusion matrix as markdown (for
docs/performance.md):
- ``precision_<fault>``, ``recall_<fault>``: on the labelled set (xueliang.diagnosis.evaluate);
- ``healthy_flagged``, ``hard_negatives_flagged`` and one line per kind of hard negative;
- ``diagnose_ms_per_camera``: CPU to diagnose one camera's sample of 4 D1 frames (decoded), one core;
- ``decode_ms_per_camera``: CPU to read those 4 frames from a file (PyAV), one core;
- ``cameras_per_hour_two_cores``: 2 × 3,600 s over the sum of the two.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from xueliang.diagnosis.detectors import Reference, diagnose
from xueliang.diagnosis.evaluate import run, table
from xueliang.diagnosis.faults import CODES
from xueliang.diagnosis.source import read_sample

FOOTAGE = Path(__file__).resolve().parent.parent / "var" / "footage"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=4)
    a = ap.parse_args()
    sc = run(FOOTAGE, windows=a.windows)
    print(f"samples: {sum(sc.counts.values())} count")
    for code in CODES:
        p, r = sc.precision_recall(code)
        print(f"precision_{code}: {p:.3f} ratio\nrecall_{code}: {r:.3f} ratio")
    print(f"healthy_flagged: {sc.flagged(sc.healthy):.3f} ratio ({sc.healthy[1]} of {sc.healthy[0]})")
    n, k = sc.hard_total()
    print(f"hard_negatives_flagged: {k / max(1, n):.3f} ratio ({k} of {n})")
    for kind, (m, f) in sc.hard.items():
        print(f"hard_negative_{kind}_flagged: {f / max(1, m):.3f} ratio ({f} of {m})")

    ref = Reference(read_sample(FOOTAGE / "vtest.avi", seconds=0.0, count=1)[0])
    n = 30
    c0 = time.process_time()
    samples = [read_sample(FOOTAGE / "vtest.avi", seconds=3.0, count=4, start=5.0 + i * 2) for i in range(n)]
    decode = (time.process_time() - c0) / n
    c0 = time.process_time()
    for s in samples:
        diagnose(s, ref)
    diag = (time.process_time() - c0) / n
    print(f"decode_ms_per_camera: {decode * 1e3:.1f} ms")
    print(f"diagnose_ms_per_camera: {diag * 1e3:.1f} ms")
    print(f"cameras_per_hour_two_cores: {2 * 3600 / (decode + diag):.0f} cameras")
    print()
    print("\n".join(table(sc)))


if __name__ == "__main__":
    main()
