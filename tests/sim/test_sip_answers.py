"""bench/sip_answers.py: each piece of a registration timed on the real platform in one process.
Small counts; the script itself refuses to print a figure unless every repeated datagram was
answered with the status its kind should get (401 for the challenge, 200 for the others)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sip_answers.py"


def test_each_piece_is_timed_on_the_real_platform(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--devices", "300", "--repeat", "200"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-3000:])
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    for name in ("sip_answer_challenge", "sip_answer_register", "sip_answer_keepalive",
                 "sip_fresh_registration_events", "sip_flush_per_device", "sip_flush_loop_per_device"):
        value, unit = out[name].split()
        assert unit == "us" and float(value) > 0, name
