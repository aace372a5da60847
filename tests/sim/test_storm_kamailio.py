"""bench/anchors/storm_kamailio.py's xueliang side: the script that measures the issue 18 anchor
runs its storm against a real xueliang server (Kamailio itself is not installed by setup; its
side is the same storm against another process). It once failed at its first storm when
sip_storm.py's client gained options this script did not set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "anchors" / "storm_kamailio.py"


@pytest.mark.serial
def test_the_anchor_script_storms_a_real_xueliang() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--target", "xueliang", "--rounds", "1", "--devices", "300", "--rate", "1000"],
        capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert out["storm_registered"] == "300 devices"
    assert out["storm_failures"] == "0 devices"
    assert float(out["storm_server_cpu_settled_median"].split()[0]) > 0
