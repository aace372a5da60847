"""A bench script run as its users run it, for the tests that hold its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def figures(script: str, *args: str, timeout: float = 120, cwd: Path | None = None) -> dict[str, str]:
    """Run ``bench/<script>`` with this interpreter and give its ``name: value unit`` lines by
    name. A run that does not exit 0 fails the test, with its output."""
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    return dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
