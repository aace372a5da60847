"""The index of recordings in the database, and its reconciliation with the disk.

A segment is a fragmented MP4 file: an init segment (``ftyp`` + ``moov``) and fragments
(``moof`` + ``mdat``), written as ``<start-epoch-ms>.mp4.part`` while open and renamed when
closed. After a crash (SIGKILL, power), on start:

- a ``.part`` is cut at its last complete fragment (a torn tail is truncated), closed and
  indexed; one without a complete fragment is deleted;
- a closed file the index does not know is indexed;
- index rows whose file is gone are removed.

Gaps are what lies between segments (:func:`gaps`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Recording
from xueliang.recording.mp4 import Mp4Error, boxes, parse_traf

log = logging.getLogger("xueliang.recording")

PART = ".part"
VIDEO_TIMESCALE = 90000
#: The shared box walker (recording/mp4.py), under the name other modules imported it by.
_boxes = boxes


@dataclass(frozen=True, slots=True)
class Contents:
    """What a segment file holds, as far as it is complete."""

    #: Bytes up to the end of the last complete fragment (0: no usable init segment).
    complete: int
    fragments: int
    #: Video decode time at the end of the last complete fragment, 90 kHz ticks.
    end_ticks: int

    @property
    def seconds(self) -> float:
        return self.end_ticks / VIDEO_TIMESCALE


def _traf_end(data: bytes | memoryview, start: int, end: int) -> tuple[int, int] | None:
    """(track id, decode time at the end of this traf) or None when malformed."""
    try:
        t = parse_traf(data, start, end)
    except Mp4Error:
        return None
    if t.decode_time is None:
        return None
    return t.track_id, t.end


def contents(data: bytes | memoryview, video_track: int = 1) -> Contents:
    """Parse a segment: the length of its complete part (init + whole moof/mdat pairs)."""
    complete = fragments = end_ticks = 0
    seen_moov = False
    moof: tuple[int, int] | None = None  # (payload start, end) of the moof awaiting its mdat
    for kind, p, e in _boxes(data):
        if not seen_moov:
            if kind == b"moov":
                seen_moov = True
                complete = e
            elif kind != b"ftyp":
                break
            continue
        if kind == b"moof":
            if moof is not None:
                break
            moof = (p, e)
        elif kind == b"mdat":
            if moof is None:
                break
            ends: list[int] | None = []
            for k, tp, te in _boxes(data, *moof):
                if k == b"traf":
                    t = _traf_end(data, tp, te)
                    if t is None:
                        ends = None
                        break
                    if t[0] == video_track and ends is not None:
                        ends.append(t[1])
            if ends is None:
                break
            moof = None
            fragments += 1
            complete = e
            if ends:
                end_ticks = max(end_ticks, *ends)
        else:
            break
    if not seen_moov:
        complete = 0
    return Contents(complete, fragments, end_ticks)


def start_of(path: Path) -> datetime | None:
    """The start a segment's file name gives (``<epoch-ms>.mp4[.part]``)."""
    stem = path.name.split(".", 1)[0]
    if not stem.isdigit():
        return None
    return datetime.fromtimestamp(int(stem) / 1000, UTC)


def segment_path(channel_id: str, start: datetime) -> str:
    """``<channel_id>/<YYYYMMDD>/<start-epoch-ms>.mp4`` (relative to the recordings root; UTC day)."""
    ms = int(start.timestamp() * 1000)
    return f"{channel_id}/{start.astimezone(UTC):%Y%m%d}/{ms}.mp4"


def repair(path: Path) -> Contents:
    """Cut a ``.part`` at its last complete fragment (in place); what remains."""
    with open(path, "r+b") as f:
        data = f.read()
        c = contents(data)
        if c.complete < len(data):
            f.truncate(c.complete)
            f.flush()
            os.fsync(f.fileno())
    return c


def gaps(segments: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime,
         tolerance: timedelta = timedelta(0)) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) that no segment covers (longer than ``tolerance``)."""
    out: list[tuple[datetime, datetime]] = []
    at = start
    for a, b in sorted(segments):
        if b <= at:
            continue
        if a > at and a - at > tolerance:
            out.append((at, min(a, end)))
        at = max(at, b)
        if at >= end:
            break
    if at < end and end - at > tolerance:
        out.append((at, end))
    return [(a, b) for a, b in out if a < b]


@dataclass(slots=True)
class ReconcileReport:
    repaired: int = 0
    dropped: int = 0
    indexed: int = 0
    removed: int = 0


def reconcile_disk(root: Path, known: dict[str, Recording], days: set[str] | None = None,
                   ) -> tuple[list[tuple[str, str, datetime, datetime, int]], list[str], ReconcileReport]:
    """In a thread: repair .part files, find closed files not indexed (in the day directories
    ``days``, YYYYMMDD; None: all). Returns (rows to upsert (path, channel, start, end, size),
    paths dropped, report)."""
    report = ReconcileReport()
    upserts: list[tuple[str, str, datetime, datetime, int]] = []
    dropped: list[str] = []
    if not root.is_dir():
        return upserts, dropped, report
    files = (sorted(root.glob("*/*/*")) if days is None
             else sorted(f for day in days for f in root.glob(f"*/{day}/*")))
    for file in files:
        if not file.is_file():
            continue
        rel = file.relative_to(root).as_posix()
        channel_id = rel.split("/", 1)[0]
        start = start_of(file)
        if start is None:
            continue
        if file.name.endswith(PART):
            c = repair(file)
            final_rel = rel.removesuffix(PART)
            if c.fragments == 0:
                file.unlink()
                dropped.append(final_rel)
                report.dropped += 1
                continue
            file.rename(root / final_rel)
            report.repaired += 1
            upserts.append((final_rel, channel_id, start, start + timedelta(seconds=c.seconds), c.complete))
        elif file.name.endswith(".mp4"):
            row = known.get(rel)
            if row is not None and row.state == "closed":
                continue
            data = file.read_bytes()
            c = contents(data)
            if c.fragments == 0:
                continue
            if c.complete < len(data):  # a torn closed file (should not happen): cut it too
                with open(file, "r+b") as f:
                    f.truncate(c.complete)
            report.indexed += row is None
            upserts.append((rel, channel_id, start, start + timedelta(seconds=c.seconds), c.complete))
    return upserts, dropped, report


async def reconcile(sessions: async_sessionmaker[AsyncSession], root: Path, *, recent_days: int | None = None,
                    now: datetime | None = None) -> ReconcileReport:
    """Make the index agree with the disk under ``root`` (the local tier). Run before recording.

    With ``recent_days``, only the segments of the last days and the open ones (what a crash can
    have left) are looked at, not every file and row kept (millions at 90 days of 300 cameras).
    """
    import asyncio

    since = days = None
    if recent_days is not None:
        now = now or datetime.now(UTC)
        since = now - timedelta(days=recent_days + 1)
        days = {f"{now - timedelta(days=i):%Y%m%d}" for i in range(recent_days + 1)}

    def rows_of() -> Select[Recording]:
        # every tier: a file a crash left behind after its segment moved to the object store
        # (recording/tiers.py) is known, not indexed again; only local rows need their file
        q = select(Recording)
        if since is not None:
            q = q.where(or_(Recording.state == "open", Recording.start >= since))
        return q

    async with sessions() as s:
        rows = (await s.scalars(rows_of())).all()
    known = {r.path.removesuffix(PART): r for r in rows}
    if days is not None:
        days |= {r.path.split("/")[1] for r in rows if r.path.count("/") >= 2}
    upserts, dropped, report = await asyncio.to_thread(reconcile_disk, root, known, days)
    async with sessions() as s, s.begin():
        by_path = {r.path.removesuffix(PART): r for r in (await s.scalars(rows_of())).all()}
        for rel, channel_id, start, end, size in upserts:
            row = by_path.pop(rel, None)
            if row is None:
                s.add(Recording(channel_id=channel_id, start=start, end=end, size=size, path=rel,
                                tier="local", state="closed"))
            else:
                row.path, row.end, row.size, row.state = rel, end, size, "closed"
        gone = [r.id for rel, r in by_path.items()
                if r.tier == "local" and (rel in dropped or not (root / r.path).is_file())]
        if gone:
            await s.execute(delete(Recording).where(Recording.id.in_(gone)))
        report.removed = len(gone)
    if report.repaired or report.dropped or report.indexed or report.removed:
        log.info("recordings reconciled with the disk: %s", report)
    return report


#: Segments of one timeline answer at most (a day of one-minute segments is 1,440).
TIMELINE_LIMIT = 5000


async def timeline(sessions: async_sessionmaker[AsyncSession], channel_id: str, start: datetime, end: datetime,
                   *, tolerance: timedelta = timedelta(seconds=2)) -> dict[str, Any]:
    """What the platform recorded of a channel in [start, end): its segments (an open one up to
    now) and the gaps between them (shorter than ``tolerance``: one recording)."""
    now = datetime.now(UTC)
    async with sessions() as s:
        rows = (await s.scalars(
            select(Recording).where(Recording.channel_id == channel_id, Recording.start < end,
                                    or_(Recording.end.is_(None), Recording.end > start))
            .order_by(Recording.start).limit(TIMELINE_LIMIT))).all()
    spans = [(r.start, r.end or now) for r in rows]
    covered = sum((min(b, end) - max(a, start)).total_seconds() for a, b in spans if min(b, end) > max(a, start))
    return {
        "channel_id": channel_id, "start": start, "end": end,
        "segments": [{"start": r.start, "end": r.end, "size": r.size, "tier": r.tier, "open": r.state == "open",
                      "source": "platform"}
                     for r in rows],
        "gaps": [{"start": a, "end": b} for a, b in gaps(spans, start, end, tolerance)],
        "recorded_seconds": round(covered, 3),
        "truncated": len(rows) == TIMELINE_LIMIT,
    }
