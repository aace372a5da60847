"""The phone app's fuzz target (tests/residents/fuzz_codes.py) for a bounded number of runs from
its kept corpus, in its own process (libFuzzer's loop ends the process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


def test_codes_and_reports_keep_their_contract_under_fuzzing(tmp_path: Path) -> None:
    scratch, artifacts = tmp_path / "new", tmp_path / "artifacts"
    scratch.mkdir()
    artifacts.mkdir()
    cmd = [sys.executable, "-m", "tests.residents.fuzz_codes", f"-artifact_prefix={artifacts}/", "-max_len=512",
           "-timeout=10", "-rss_limit_mb=2048", "-runs=20000", "-max_total_time=20", "-seed=1", str(scratch),
           str(CORPUS)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=120)
    crashes = list(artifacts.iterdir())
    assert proc.returncode == 0 and not crashes, (
        f"the fuzz target broke its contract: {[c.name for c in crashes]}\n{proc.stderr[-3000:]}")
