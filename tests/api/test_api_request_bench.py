"""bench/api_request.py: one API request's CPU through the whole app. It measures only answered
requests: a path that does not answer 200 ends it with an error, not a figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.benches import BENCH, figures

SCRIPT = BENCH / "api_request.py"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), "--requests", "50", *args],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_a_figure_for_an_answered_request(tmp_path: Path) -> None:
    out = figures("api_request.py", "--requests", "50", cwd=tmp_path)
    assert out["api_request_path"] == "/api/v1/auth/me"
    assert float(out["api_request_cpu"].split()[0]) > 0


def test_no_figure_for_a_refused_request(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--path", "/api/v1/no-such-route")
    assert proc.returncode != 0
    assert "answered [404], not 200" in proc.stderr + proc.stdout
    assert "api_request_cpu" not in proc.stdout
