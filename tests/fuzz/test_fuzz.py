"""Coverage-guided fuzzing in the suite: every target of tests/fuzz/targets.py for a bounded
number of runs, from the kept corpus (which holds every input that ever broke a parser).

Each target runs in its own process (atheris's libFuzzer loop ends the process). A failure
prints the input that broke the contract and how to run it again; ``bench/fuzz.py`` fuzzes
for longer.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.fuzz.run import TARGET_NAMES, fuzz_command

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"

#: Runs per target beyond the corpus: a few seconds each, under a minute in all, on the 2-core
#: test machine (XUELIANG_FUZZ_SCALE multiplies them).
RUNS = {
    "sip": 8000, "sip_uri": 3000, "sip_digest": 6000, "sip_stream": 4000, "sip_scan": 6000, "manscdp": 5000,
    "sdp": 5000, "mansrtsp": 8000, "rtp": 20000, "rtp_stream": 1000, "ps": 800, "ps_rtp_in": 800, "nal": 2000,
    "sheet": 800, "cascade_invite": 3000, "mp4": 3000, "timetable": 5000, "recording_stream": 2000,
    "boundaries": 3000,
}
SCALE = float(os.environ.get("XUELIANG_FUZZ_SCALE", "1"))

pytestmark = pytest.mark.slow


def test_every_target_has_a_kept_corpus_of_modest_size() -> None:
    total = 0
    for name in TARGET_NAMES:
        files = list((CORPUS / name).iterdir()) if (CORPUS / name).is_dir() else []
        assert files, f"tests/fuzz/corpus/{name} is empty: run bench/fuzz.py --seed --merge"
        total += sum(f.stat().st_size for f in files)
    assert total < 1024 * 1024, f"the kept corpus is {total / 1024:.0f} KB: merge it (-merge=1)"
    assert set(RUNS) == set(TARGET_NAMES)


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_fuzz_target_keeps_its_contract(name: str, tmp_path: Path) -> None:
    """The parser returns a value or raises its own error (never IndexError, KeyError,
    UnicodeDecodeError, RecursionError...), does not hang (10 s per input) or grow past 2 GB,
    and what its serializer writes parses back to the same value."""
    scratch = tmp_path / "new"
    artifacts = tmp_path / "artifacts"
    scratch.mkdir()
    artifacts.mkdir()
    runs = max(100, int(RUNS[name] * SCALE))
    cmd = fuzz_command(name, [scratch, CORPUS / name], artifacts=artifacts,
                       flags=[f"-runs={runs}", "-max_total_time=60", "-seed=1"])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, errors="replace",
                          timeout=180)
    if proc.returncode == 0:
        return
    found = sorted(artifacts.iterdir())
    report = [f"fuzz target {name!r} failed (exit {proc.returncode})"]
    for f in found:
        data = f.read_bytes()
        report += [
            f"input {f.name} ({len(data)} bytes): {data[:2000]!r}",
            f"base64: {base64.b64encode(data).decode()[:4000]}",
            f"again: python -m tests.fuzz.targets {name} <that file>; keep it in "
            f"tests/fuzz/corpus/{name}/ once the parser is fixed",
        ]
    report.append("\n".join(proc.stderr.splitlines()[-40:]))
    pytest.fail("\n".join(report), pytrace=False)
