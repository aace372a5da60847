"""Simulated device recordings (设备录像) for RecordInfo queries and Playback/Download.

A simulated channel records one file of ``length`` seconds (default 10 minutes) at the start
of every hour, for the last ``hours`` hours (default 24): ``HH:00:00``–``HH:10:00`` local time.
Nothing is stored; the files are a pure function of the clock, so every query and every
playback agree with each other. Playback of any range streams the simulator's looped clip
(see :mod:`xueliang.sim.video`): the pictures do not depend on the time asked for.

Times are GB/T 28181 local times, ``yyyy-MM-ddTHH:mm:ss`` without a zone (devices use their
own local time; the simulator uses the host's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from xueliang.gb28181.manscdp import RecordItem

__all__ = ["RecordingSchedule", "format_gb_time", "parse_gb_time"]

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y%m%dT%H%M%S")


def parse_gb_time(text: str | None) -> dt.datetime | None:
    """``yyyy-MM-ddTHH:mm:ss`` (or with a space, or milliseconds) → naive local datetime."""
    if not text:
        return None
    text = text.strip()
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def format_gb_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(slots=True, frozen=True)
class RecordingSchedule:
    """Which recordings a simulated channel has: one file of ``length`` s every hour."""

    hours: int = 24
    length: int = 600
    bitrate: int = 2_000_000
    """Bits per second, for FileSize."""

    def files(
        self,
        channel_id: str,
        start: dt.datetime | None,
        end: dt.datetime | None,
        *,
        now: dt.datetime | None = None,
        name: str = "",
        address: str = "",
        recorder_id: str = "",
        record_type: str = "time",
    ) -> list[RecordItem]:
        """The files overlapping [start, end] (None = unbounded), oldest first."""
        now = now or dt.datetime.now().replace(microsecond=0)
        last = now.replace(minute=0, second=0, microsecond=0)
        if last + dt.timedelta(seconds=self.length) > now:
            last -= dt.timedelta(hours=1)  # the current hour's file is still being written
        first = last - dt.timedelta(hours=self.hours - 1)
        if record_type not in ("all", "time", ""):
            return []  # only scheduled ("time") recordings exist; alarm/manual are empty
        out: list[RecordItem] = []
        size = self.length * self.bitrate // 8
        t = first
        while t <= last:
            f_end = t + dt.timedelta(seconds=self.length)
            if (start is None or f_end > start) and (end is None or t < end):
                out.append(
                    RecordItem(
                        device_id=channel_id,
                        name=name,
                        file_path=f"/record/{channel_id}/{t:%Y%m%d}/{t:%H%M%S}.ps",
                        address=address,
                        start_time=format_gb_time(t),
                        end_time=format_gb_time(f_end),
                        secrecy=0,
                        type="time",
                        recorder_id=recorder_id or channel_id,
                        file_size=size,
                    )
                )
            t += dt.timedelta(hours=1)
        return out
