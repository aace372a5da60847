"""Times as a database driver takes them, for the rows the hot writers hand it as plain tuples.

The signalling writer (gb28181/rows.py) and the state history (health/transitions.py) bypass
SQLAlchemy's per-row type processing (issue 18), so they must spell times as SQLAlchemy's
DateTime would: SQLite keeps them as text, naive UTC with microseconds
("2026-11-24 09:15:43.000000"); other drivers take aware datetimes. Compiled with mypyc
(src/xueliang/_native.py) with both; nothing here does I/O.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any


class Stamps:
    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        self._second = -1  # the second whose "YYYY-MM-DD HH:MM:SS." is in _prefix
        self._prefix = ""

    def ts(self, wall: float) -> Any:
        if not self.sqlite:
            return datetime.fromtimestamp(wall, UTC)
        if wall < 0.0:  # before 1970, never a row's: datetime's own arithmetic
            return datetime.fromtimestamp(wall, UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        # A storm's rows fall in a few seconds: format each second once, then only the
        # microseconds, rounded as datetime.fromtimestamp rounds them (half to even). Compiled,
        # math.floor and float arithmetic are native code; math.modf and round() were generic
        # calls, most of what a call cost.
        second = math.floor(wall)
        x = (wall - second) * 1e6  # exact: wall - floor(wall) loses nothing (Sterbenz)
        us = math.floor(x)
        rest = x - us
        if rest > 0.5 or (rest == 0.5 and us % 2 == 1):
            us += 1
        if us >= 1_000_000:
            second, us = second + 1, us - 1_000_000
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat(" ") + "."
            self._second = second
        return self._prefix + str(us + 1_000_000)[1:]  # six digits, zero-padded
