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
from typing import Any, Final

#: Seconds whose text is kept: more than a keepalive flush spans (five minutes).
_PREFIXES_MAX: Final = 4096


class Stamps:
    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite
        #: "YYYY-MM-DD HH:MM:SS." of the seconds met lately. Not one second only: a flush's times
        #: are not in order (a device's registration and its last keepalive; the keepalive
        #: times of five minutes, by device), and formatting a second costs over ten times what
        #: the rest of a call does.
        self._prefixes: dict[int, str] = {}

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
        prefix = self._prefixes.get(second)
        if prefix is None:
            if len(self._prefixes) >= _PREFIXES_MAX:
                self._prefixes.clear()
            prefix = self._prefixes[second] = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat(" ") + "."
        return prefix + str(us + 1_000_000)[1:]  # six digits, zero-padded
