"""How the suite and bench/fuzz.py start a fuzz target (each in its own process: atheris's
libFuzzer loop ends the process when it is done)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

#: The targets of tests/fuzz/targets.py (kept here so that listing them needs no atheris).
TARGET_NAMES: tuple[str, ...] = (
    "sip", "sip_uri", "sip_digest", "sip_stream", "sip_scan", "manscdp", "sdp", "mansrtsp",
    "rtp", "rtp_stream", "ps", "ps_rtp_in", "nal", "sheet", "cascade_invite", "mp4", "timetable",
    "recording_stream", "boundaries",
)

#: Longest input libFuzzer makes per target: a workbook or a few PS frames need more room.
MAX_LEN = {"sheet": 8192, "ps": 1536, "rtp_stream": 1024, "ps_rtp_in": 2048, "manscdp": 4096}


def fuzz_command(
    name: str, corpus: Sequence[Path], *, artifacts: Path, flags: Sequence[str] = ()
) -> list[str]:
    """The command line; new inputs go to ``corpus[0]``, the others are read only.

    A hang (one input over 10 s) or a process over 2 GB is a crash too.
    """
    return [
        sys.executable, "-m", "tests.fuzz.targets", name,
        f"-artifact_prefix={artifacts}/",
        f"-max_len={MAX_LEN.get(name, 4096)}",
        "-timeout=10",
        "-rss_limit_mb=2048",
        *flags,
        *(str(p) for p in corpus),
    ]
