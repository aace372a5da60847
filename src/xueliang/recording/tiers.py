"""Storage tiers (分级存储): recent segments on local disk, older ones in the object store.

A scheduler job (once in the cluster, like retention) moves closed segments that ended more
than ``recording.tier_after_days`` ago to the object store (``storage.objects``), in batches.
Each segment is:

1. copied (``recordings/<path>``) and read back: its size and SHA-256 must match the file's;
2. switched in the index (``tier = object``, ``object_key``, ``sha256``), one transaction a batch;
3. deleted from the disk.

A crash at any step leaves the segment readable in one place: before 2 the row still says
``local`` and the file is there (the next run copies it again, over the orphan copy); after 2
the row says ``object`` and the object was verified, and the file left behind is deleted by the
next run (:meth:`Tiering.finish`), which looks at the day folders old enough to have moved.
Playback reads a segment from wherever its row says (:mod:`xueliang.recording.playback`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Recording
from xueliang.errors import Unavailable
from xueliang.objects import ObjectStore
from xueliang.objects.store import CHUNK
from xueliang.scheduler.jobs import Scheduler

log = logging.getLogger("xueliang.recording")

LOCAL, OBJECT = "local", "object"
#: Segments copied between two index updates (a minute each: about 1.5 GB at 2 Mbit/s).
BATCH = 100
#: Segments copied at the same time.
COPIES = 4
#: Key prefix of recordings in the object store.
PREFIX = "recordings/"


def object_key(path: str) -> str:
    """The object a segment moves to: ``recordings/<channel>/<YYYYMMDD>/<epoch-ms>.mp4``."""
    return PREFIX + path


def file_digest(path: Path) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


@dataclass(slots=True)
class TierReport:
    moved: int = 0
    bytes: int = 0
    #: Files left on disk by a crash after their row switched, deleted now.
    finished: int = 0
    #: Rows whose file was missing (reconcile removes them) or that vanished meanwhile.
    skipped: int = 0


class Tiering:
    """Moves segments due from the local tier (``root``) to ``objects``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], root: Path, objects: ObjectStore,
                 after_days: float, *, batch: int = BATCH, copies: int = COPIES) -> None:
        self.sessions = sessions
        self.root = root
        self.objects = objects
        self.after = timedelta(days=after_days)
        self.batch = batch
        self.moved = 0
        self._parallel = asyncio.Semaphore(copies)

    def add_jobs(self, scheduler: Scheduler, every: float) -> None:
        scheduler.add("recording.tiers", every, self.run)

    async def run(self, done: str | None = None, *, now: datetime | None = None) -> str | None:
        """Move what is due; returns the time it ran (the job's marker)."""
        now = now or datetime.now(UTC)
        report = await self.move(now - self.after)
        if report.moved or report.finished:
            log.info("tiers: %s", report)
        return now.isoformat()

    async def move(self, before: datetime, *, stop_after: int | None = None) -> TierReport:
        """Move the closed local segments that ended before ``before``. ``stop_after``: copy at
        most that many and stop right after copying, before the index changes (what a crash
        there leaves; for tests)."""
        report = TierReport()
        report.finished = await self.finish(before)
        last = 0
        while True:
            async with self.sessions() as s:
                rows = (await s.execute(
                    select(Recording.id, Recording.path).where(
                        Recording.tier == LOCAL, Recording.state == "closed", Recording.end < before,
                        Recording.id > last).order_by(Recording.id).limit(self.batch))).all()
            if not rows:
                break
            last = rows[-1][0]
            if stop_after is not None:
                rows = rows[:stop_after]
            # a few copies at once: each waits on the store's round trips more than on a core
            results = await asyncio.gather(*(self._copy_guarded(path) for _, path in rows))
            copied: list[tuple[int, str, str, str, int]] = []
            down: Unavailable | None = None
            for (rid, path), got in zip(rows, results, strict=True):
                if isinstance(got, FileNotFoundError):
                    report.skipped += 1
                elif isinstance(got, Unavailable):
                    down = got
                else:
                    copied.append((rid, path, object_key(path), *got))
            if stop_after is not None:
                return report
            await self._switch(copied, report)
            if down is not None:  # the store is down: the rest waits for the next run
                log.warning("tiers: %s; segments stay local until it answers", down)
                return report
            if len(rows) < self.batch:
                break
        await asyncio.to_thread(self._prune, f"{before.astimezone(UTC):%Y%m%d}")
        return report

    async def _copy_guarded(self, path: str) -> tuple[str, int] | FileNotFoundError | Unavailable:
        async with self._parallel:
            try:
                return await self._copy(path)
            except (FileNotFoundError, Unavailable) as e:
                return e

    async def _copy(self, path: str) -> tuple[str, int]:
        """Copy one segment and check the copy; (sha256, size)."""
        file = self.root / path
        digest, size = await asyncio.to_thread(file_digest, file)
        key = object_key(path)
        info = await self.objects.put_file(key, file)
        back = hashlib.sha256()
        got = 0
        async for chunk in await self.objects.open(key):
            back.update(chunk)
            got += len(chunk)
        if info.size != size or got != size or back.hexdigest() != digest:
            raise Unavailable(f"the object store's copy of {path} differs from the file "
                              f"({got} of {size} bytes read back)")
        return digest, size

    async def _switch(self, copied: list[tuple[int, str, str, str, int]], report: TierReport) -> None:
        """Point the rows at their objects, then delete the files."""
        if not copied:
            return
        switched: list[str] = []
        orphans: list[str] = []
        async with self.sessions() as s, s.begin():
            for rid, path, key, digest, _ in copied:
                r = await s.execute(update(Recording).where(Recording.id == rid, Recording.tier == LOCAL)
                                    .values(tier=OBJECT, object_key=key, sha256=digest))
                (switched if r.rowcount else orphans).append(path)  # type: ignore[attr-defined]
        await asyncio.to_thread(self._unlink, switched)
        for path in orphans:  # deleted by retention while it was copied: so is the copy
            await self.objects.delete(object_key(path))
        report.skipped += len(orphans)
        report.moved += len(switched)
        done = set(switched)
        report.bytes += sum(size for _, path, _, _, size in copied if path in done)
        self.moved += len(switched)

    async def finish(self, before: datetime) -> int:
        """Delete the files a crash left behind after their rows had switched to the object
        store, in the day folders old enough to have moved."""
        files = await asyncio.to_thread(self._old_files, f"{before.astimezone(UTC):%Y%m%d}")
        gone = 0
        for i in range(0, len(files), 500):
            part = files[i:i + 500]
            async with self.sessions() as s:
                moved = set((await s.scalars(select(Recording.path).where(
                    Recording.path.in_(part), Recording.tier == OBJECT))).all())
            await asyncio.to_thread(self._unlink, sorted(moved))
            gone += len(moved)
        return gone

    def _old_files(self, last_day: str) -> list[str]:
        out: list[str] = []
        if not self.root.is_dir():
            return out
        for channel in self.root.iterdir():
            if not channel.is_dir():
                continue
            for day in channel.iterdir():
                if day.is_dir() and day.name.isdigit() and day.name <= last_day:
                    out += [f"{channel.name}/{day.name}/{f.name}" for f in day.iterdir()
                            if f.is_file() and f.name.endswith(".mp4")]
        return out

    def _prune(self, last_day: str) -> None:
        if not self.root.is_dir():
            return
        for channel in self.root.iterdir():
            if channel.is_dir():
                for day in channel.iterdir():
                    if day.is_dir() and day.name.isdigit() and day.name <= last_day:
                        try:
                            day.rmdir()  # only when empty (the writer writes only today's)
                        except OSError:
                            pass

    def _unlink(self, paths: list[str]) -> None:
        for p in paths:
            (self.root / p).unlink(missing_ok=True)
