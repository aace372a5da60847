"""bench/sip_handling.py: the storm through the real platform in one process, sockets replaced
by memory. A small storm: every device registers (digest) and is answered its keepalive, and
the figures it prints are there and positive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sip_handling.py"


def test_small_storm_through_the_real_platform(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--devices", "200", "--rate", "1000"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert out["sip_handling_registered"] == "200 devices"
    assert out["sip_handling_keepalives"] == "200 answered"
    assert float(out["sip_handling_cpu_settled"].split()[0]) > 0
    assert float(out["sip_handling_client_cpu"].split()[0]) > 0
