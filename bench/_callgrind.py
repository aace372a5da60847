"""What the benches that count instructions share: callgrind's control of this process, and
a dump's total."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def control(*what: str) -> None:
    """``callgrind_control`` on this process (``-i on``, ``-z``, ``--dump=…``)."""
    subprocess.run(["callgrind_control", *what, str(os.getpid())], check=True, capture_output=True)


def total(dump: Path) -> int:
    """The instructions a callgrind dump counted."""
    return next(int(line.split()[1]) for line in dump.read_text().splitlines()
                if line.startswith(("summary:", "totals:")))
