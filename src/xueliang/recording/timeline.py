"""The merged timeline (录像时间轴) of a channel: what the platform recorded (the index,
:func:`xueliang.recording.index.timeline`) and what the device itself holds (a RecordInfo query,
waited for a bounded time), each item with its ``source``, and the gaps where neither has video.

Device times are GB/T 28181 local times without a zone. The platform sets its devices' clocks
(the Date of its REGISTER answers, gb28181/registrar.py) from its own local time, so that is
how they are read here. A device that does not answer in time, is offline, or is not a GB/T
28181 device leaves the platform's part alone, with ``device: {"state": "unavailable", ...}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.errors import DomainError
from xueliang.gb28181.commands import DeviceCommands
from xueliang.recording.index import gaps, timeline

log = logging.getLogger("xueliang.recording")

#: Seconds the device is waited for by default, and at most.
DEVICE_WAIT, MAX_DEVICE_WAIT = 5.0, 15.0
#: Device recordings one answer takes at most (a day of one-minute files is 1,440).
DEVICE_LIMIT = 5000
_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f")
GB_TIME = "%Y-%m-%dT%H:%M:%S"


def device_time(text: object) -> datetime | None:
    """A device's ``yyyy-MM-ddTHH:mm:ss`` (local time, see above) in UTC; None if it is not one."""
    if not isinstance(text, str) or not text or len(text) > 32:
        return None
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).astimezone(UTC)
        except (ValueError, OverflowError, OSError):
            continue
    return None


def to_device_time(t: datetime) -> str:
    """A time as the device reads it (local, no zone)."""
    return t.astimezone().strftime(GB_TIME)


def device_items(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The device's RecordInfo items as timeline items; ones without a readable, forward time
    range are left out (a device's bad item never fails the timeline)."""
    out: list[dict[str, Any]] = []
    for r in records[:DEVICE_LIMIT]:
        a, b = device_time(r.get("start")), device_time(r.get("end"))
        if a is None or b is None or b <= a:
            continue
        size = r.get("size")
        out.append({"start": a, "end": b, "source": "device", "type": str(r.get("type") or ""),
                    "name": str(r.get("name") or ""), "file_path": str(r.get("file_path") or ""),
                    "size": size if isinstance(size, int) else None})
    return sorted(out, key=lambda x: x["start"])


async def ask_device(devices: DeviceCommands | None, device_id: str | None, channel_id: str,
                     start: datetime, end: datetime, wait: float = DEVICE_WAIT,
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the device's recordings as items, the device's state) for [start, end)."""
    if devices is None:
        return [], {"state": "unavailable", "reason": "GB/T 28181 signalling is not enabled"}
    if not device_id:
        return [], {"state": "unavailable", "reason": "the channel has no GB/T 28181 device"}
    try:
        async with asyncio.timeout(wait):
            records = await devices.record_info(device_id, channel_id, to_device_time(start),
                                                to_device_time(end), "all")
    except TimeoutError:
        return [], {"state": "unavailable", "reason": f"the device did not answer within {wait:g} s"}
    except DomainError as e:  # offline, unknown to signalling, no answer, refused
        return [], {"state": "unavailable", "reason": e.detail}
    items = device_items(records)
    return items, {"state": "ok", "recordings": len(items)}


async def merged_timeline(sessions: async_sessionmaker[AsyncSession], devices: DeviceCommands | None,
                          device_id: str | None, channel_id: str, start: datetime, end: datetime, *,
                          wait: float = DEVICE_WAIT, tolerance: timedelta = timedelta(seconds=2),
                          ) -> dict[str, Any]:
    """The platform's segments and the device's recordings of [start, end), by start, each
    with its source; the gaps where neither has video; and how the device answered."""
    platform, (device, state) = await asyncio.gather(
        timeline(sessions, channel_id, start, end, tolerance=tolerance),
        ask_device(devices, device_id, channel_id, start, end, wait))
    now = datetime.now(UTC)
    items = sorted([*platform["segments"], *device], key=lambda x: (x["start"], x["source"]))
    spans = [(x["start"], x["end"] or now) for x in items]
    return {**platform, "segments": items,
            "gaps": [{"start": a, "end": b} for a, b in gaps(spans, start, end, tolerance)],
            "device": state}
