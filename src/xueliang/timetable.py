"""A weekly timetable (周计划), sans-IO: days of the week and time ranges, in the platform's time.

A window is ``{"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}``: ISO days (1 Monday
… 7 Sunday) on which it *starts*, and ``HH:MM`` clock times. An end at or before the start
crosses midnight (``22:00``–``06:00`` on Friday runs to Saturday 06:00; on Sunday, to Monday
06:00 of the next week); ``24:00`` is the end of the day. A window of zero length is refused.

Times are minutes of the week (0 = Monday 00:00); the caller brings the time into the
platform's time zone (``health.utc_offset_hours``) first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DAY = 1440
WEEK = 7 * DAY
#: Windows a timetable holds at most (a bound for what a caller may send).
MAX_WINDOWS = 64


class TimetableError(ValueError):
    """A timetable that cannot be read; the message says which part and why."""


def parse_clock(text: object, *, end: bool = False) -> int:
    """``HH:MM`` → minutes of the day (``24:00`` only as an end)."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":" or not (
            text[:2].isascii() and text[:2].isdigit() and text[3:].isascii() and text[3:].isdigit()):
        raise TimetableError(f"{text!r} is not a time of day as HH:MM")
    h, m = int(text[:2]), int(text[3:])
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        raise TimetableError(f"{text!r} is not a time of day (00:00 to 23:59{', or 24:00' if end else ''})")
    return h * 60 + m


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class Window:
    days: tuple[int, ...]
    start: int
    end: int

    def spans(self) -> list[tuple[int, int]]:
        """[start, end) minutes of the week it covers (one past Sunday midnight is split in two)."""
        length = (self.end - self.start) % DAY or DAY
        out: list[tuple[int, int]] = []
        for d in self.days:
            a = (d - 1) * DAY + self.start
            b = a + length
            if b <= WEEK:
                out.append((a, b))
            else:
                out.extend([(a, WEEK), (0, b - WEEK)])
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"days": list(self.days), "start": format_clock(self.start), "end": format_clock(self.end)}


def parse_window(obj: object) -> Window:
    if not isinstance(obj, Mapping):
        raise TimetableError("a window is an object with days, start and end")
    unknown = set(obj) - {"days", "start", "end"}
    if unknown:
        raise TimetableError(f"a window has days, start and end, not {', '.join(sorted(map(str, unknown)))}")
    days = obj.get("days")
    if not isinstance(days, list | tuple) or not days:
        raise TimetableError("days: a list of days of the week, 1 (Monday) to 7 (Sunday)")
    for d in days:
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7:
            raise TimetableError(f"days: {d!r} is not a day of the week, 1 (Monday) to 7 (Sunday)")
    start = parse_clock(obj.get("start"))
    end = parse_clock(obj.get("end"), end=True)
    if start == end % DAY and end != DAY:
        raise TimetableError(f"{format_clock(start)} to {format_clock(end)} is no time at all")
    return Window(tuple(sorted(set(days))), start, end)


def _merge(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def minute_of_week(t: datetime) -> float:
    """Minutes since Monday 00:00 of ``t``'s week, in ``t``'s own time zone."""
    return (t.isoweekday() - 1) * DAY + t.hour * 60 + t.minute + (t.second + t.microsecond / 1e6) / 60


@dataclass(frozen=True, slots=True)
class Timetable:
    windows: tuple[Window, ...]

    @property
    def spans(self) -> tuple[tuple[int, int], ...]:
        return _merge(s for w in self.windows for s in w.spans())

    def on(self, t: datetime) -> bool:
        """Whether ``t`` (in the platform's time zone) is inside a window."""
        m = minute_of_week(t)
        return any(a <= m < b for a, b in self.spans)

    def next_change(self, t: datetime) -> datetime | None:
        """The next moment after ``t`` the timetable switches on or off (None: it never does)."""
        spans = self.spans
        if not spans or spans == ((0, WEEK),):
            return None
        edges = {e % WEEK for s in spans for e in s}
        if spans[0][0] == 0 and spans[-1][1] == WEEK:
            edges.discard(0)  # on across Sunday midnight: nothing changes there
        m = minute_of_week(t)
        cuts = sorted(edges)
        later = [e for e in cuts if e > m]
        ahead = (later[0] - m) if later else (WEEK - m + cuts[0])
        return t + timedelta(minutes=ahead)

    def as_list(self) -> list[dict[str, Any]]:
        return [w.as_dict() for w in self.windows]


def parse_timetable(obj: object) -> Timetable:
    """A list of windows (see the module's docstring) → Timetable, or TimetableError."""
    if not isinstance(obj, list | tuple):
        raise TimetableError("a timetable is a list of windows")
    if len(obj) > MAX_WINDOWS:
        raise TimetableError(f"a timetable has at most {MAX_WINDOWS} windows")
    windows: list[Window] = []
    for i, w in enumerate(obj):
        try:
            windows.append(parse_window(w))
        except TimetableError as e:
            raise TimetableError(f"window {i + 1}: {e}") from None
    return Timetable(tuple(windows))
