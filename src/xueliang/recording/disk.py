"""The recordings disk nearly full: free it by retention, then alarm and stop the least important.

Every ``recording.disk_seconds`` the free space under the recordings root is read. Below
``recording.min_free_percent`` of the disk (or ``min_free_bytes``, whichever is larger):

1. recordings beyond retention are deleted at once, through retention's own path (so that what
   is under evidence hold stays, whatever the hurry);
2. if that is not enough, ``recording.disk_low`` goes on the bus (an alarm for the health and
   event views) and the least important channels stop recording, one group per check: class III
   first, then II, then I, key sites last. The recorder runs on instead of failing on a full
   disk; nothing within retention is deleted to make room.

When the free space is back above the threshold with a margin, the stopped channels resume and
``recording.disk_ok`` is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from xueliang.bus import Bus
from xueliang.config import RecordingConfig
from xueliang.recording.channel_plans import Camera
from xueliang.recording.plans import Plan

log = logging.getLogger("xueliang.recording")

LOW = "recording.disk_low"
OK = "recording.disk_ok"
#: Resume when the free space is this many times the threshold (not to flap at its edge).
RESUME_FACTOR = 1.25


@dataclass(frozen=True, slots=True)
class DiskSpace:
    free: int
    total: int


def read_usage(root: Path) -> DiskSpace:
    u = shutil.disk_usage(root)
    return DiskSpace(u.free, u.total)


def threshold(space: DiskSpace, min_percent: float, min_bytes: int) -> int:
    """Free bytes below which the disk is nearly full."""
    return max(int(space.total * min_percent / 100), min_bytes)


def importance(cam: Camera) -> int:
    """Higher is kept longer: key sites, then class I, II, III (no class: III)."""
    if cam.key_site:
        return 4
    return {1: 3, 2: 2}.get(cam.point_class or 3, 1)


def shed_order(channels: Iterable[tuple[Camera, Plan]]) -> list[list[str]]:
    """Groups of channels, least important first (each group stops together)."""
    groups: dict[int, list[str]] = {}
    for cam, _ in channels:
        groups.setdefault(importance(cam), []).append(cam.id)
    return [sorted(groups[k]) for k in sorted(groups)]


class RecorderView(Protocol):
    """What the guard needs of the recorder (writer.Recorder)."""

    current: dict[str, tuple[Camera, Plan]]
    suspended: set[str]

    @property
    def recording(self) -> list[str]: ...

    async def apply_plans(self, done: str | None = None) -> str | None: ...


class DiskGuard:
    def __init__(self, cfg: RecordingConfig, root: Path, recorder: RecorderView,
                 free_beyond_retention: Callable[[], Awaitable[object]] | None, bus: Bus | None, *,
                 usage: Callable[[Path], DiskSpace] = read_usage, node: str = "") -> None:
        self.cfg = cfg
        self.root = root
        self.recorder = recorder
        self.free_beyond_retention = free_beyond_retention
        self.bus = bus
        self.usage = usage
        self.node = node
        #: Whether the disk is (still) short after retention: an alarm is up.
        self.low = False
        self.checks = 0
        self._task: asyncio.Task[None] | None = None

    def _read(self) -> DiskSpace:
        return self.usage(self.root)

    async def check(self) -> str:
        """One reading and what it calls for: ``ok``, ``freed`` (retention was enough),
        ``resumed``, or ``short`` (alarm; a group of channels stopped)."""
        self.checks += 1
        space = self._read()
        need = threshold(space, self.cfg.min_free_percent, self.cfg.min_free_bytes)
        if space.free >= need:
            if self.low and space.free >= need * RESUME_FACTOR:
                return await self._resume(space, need)
            return "ok"
        if self.free_beyond_retention is not None:
            await self.free_beyond_retention()
            space = self._read()
            if space.free >= need:
                log.info("recordings disk: retention freed enough (%d bytes free)", space.free)
                return "freed" if not self.low else "ok"
        stopped = await self._shed()
        self.low = True
        log.error("recordings disk nearly full: %d of %d bytes free (needs %d); stopped %d channels",
                  space.free, space.total, need, len(stopped))
        if self.bus is not None:
            self.bus.publish(LOW, self.node or str(self.root), free=space.free, total=space.total, needed=need,
                             stopped=stopped[:100], suspended=len(self.recorder.suspended))
        return "short"

    async def _shed(self) -> list[str]:
        """Stop the least important group still recording."""
        active = set(self.recorder.recording)
        for group in shed_order(self.recorder.current.values()):
            hit = [c for c in group if c in active and c not in self.recorder.suspended]
            if hit:
                self.recorder.suspended.update(hit)
                await self.recorder.apply_plans()
                return hit
        return []

    async def _resume(self, space: DiskSpace, need: int) -> str:
        resumed = len(self.recorder.suspended)
        self.recorder.suspended.clear()
        self.low = False
        await self.recorder.apply_plans()
        log.warning("recordings disk has room again (%d bytes free): %d channels resumed", space.free, resumed)
        if self.bus is not None:
            self.bus.publish(OK, self.node or str(self.root), free=space.free, total=space.total, needed=need,
                             resumed=resumed)
        return "resumed"

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="recordings disk")

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recordings disk not checked")
            await asyncio.sleep(self.cfg.disk_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            t, self._task = self._task, None
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
