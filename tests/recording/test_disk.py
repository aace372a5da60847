"""The recordings disk nearly full: recordings beyond retention go first (through retention, so an
evidence hold keeps its segments); then an alarm on the bus and the least important channels
stop, group by group; with room again they resume. Real segment files on disk; the free-space
reading is injected (a small disk of 10 MB over the real files: no root here for a tiny
filesystem)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import EventBus
from xueliang.config import MediaConfig, RecordingConfig
from xueliang.db.tables import Channel, EvidenceHold, Recording
from xueliang.media.hub import MediaHub
from xueliang.recording.disk import LOW, OK, DiskGuard, DiskSpace, threshold
from xueliang.recording.index import segment_path
from xueliang.recording.retention import Retention
from xueliang.recording.writer import Recorder

MB = 1 << 20
DISK = 10 * MB
C3, C2, C1, KEY = (f"3402000000132000000{i}" for i in range(1, 5))
CLASSES = {C3: (3, False), C2: (2, False), C1: (1, False), KEY: (3, True)}


class World:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], root: Path, rec: Recorder, guard: DiskGuard,
                 bus: EventBus) -> None:
        self.sessions, self.root, self.rec, self.guard, self.bus = sessions, root, rec, guard, bus
        self.events = bus.subscribe("recording")

    def used(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    async def segment(self, cid: str, age: timedelta, size: int = MB) -> str:
        start = datetime.now(UTC) - age
        rel = segment_path(cid, start)
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.root / rel).write_bytes(b"\0" * size)
        async with self.sessions() as s, s.begin():
            s.add(Recording(channel_id=cid, start=start, end=start + timedelta(minutes=1), size=size, path=rel,
                            state="closed"))
        return rel

    def published(self) -> list[str]:
        out = []
        while not self.events.queue.empty():  # type: ignore[attr-defined]
            out.append(self.events.queue.get_nowait().kind)  # type: ignore[attr-defined]
        return [k for k in out if k in (LOW, OK)]


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[World]:
    root = tmp_path / "recordings"
    root.mkdir()
    cfg = RecordingConfig(enabled=True, continuous={1: True, 2: True, 3: True}, min_free_percent=30)
    bus = EventBus()
    rec = Recorder(cfg, sessions, MediaHub(MediaConfig(), bus), root, bus=bus)  # no source: tasks wait
    async with sessions() as s, s.begin():
        for cid, (pc, ks) in CLASSES.items():
            s.add(Channel(id=cid, name=cid, point_class=pc, key_site=ks))
    retention = Retention(rec.policy, sessions, root)
    holder: list[World] = []
    guard = DiskGuard(cfg, root, rec, retention.run, bus,
                      usage=lambda _: DiskSpace(DISK - holder[0].used(), DISK))
    w = World(sessions, root, rec, guard, bus)
    holder.append(w)
    await rec.apply_plans()
    yield w
    await rec.stop()


async def test_retention_frees_the_disk_first_and_an_evidence_hold_stays(world: World) -> None:
    old = timedelta(days=40)  # beyond class III's and II's 30 days
    doomed = [await world.segment(C3, old + timedelta(minutes=i)) for i in range(2)]
    doomed.append(await world.segment(C2, old))
    held = await world.segment(C3, old + timedelta(hours=5))
    recent = [await world.segment(c, timedelta(days=1)) for c in CLASSES]
    async with world.sessions() as s, s.begin():
        start = datetime.now(UTC) - old - timedelta(hours=6)
        s.add(EvidenceHold(case_number="案2026-118", channel_ids=[C3], start=start, end=start + timedelta(hours=2),
                           reason="盗窃案", created_by="root"))
    assert DISK - world.used() == 2 * MB < threshold(DiskSpace(0, DISK), 30, 0)  # 3 MB needed

    assert await world.guard.check() == "freed"
    left = {p.relative_to(world.root).as_posix() for p in world.root.rglob("*.mp4")}
    assert left == {held, *recent}  # the held one stays, whatever the hurry; nothing recent went
    async with world.sessions() as s:
        assert set((await s.scalars(select(Recording.path))).all()) == left
    assert not world.published() and world.rec.recording == sorted(CLASSES) and not world.guard.low


async def test_still_short_it_alarms_and_stops_the_least_important_first_then_resumes(world: World) -> None:
    recent = [await world.segment(c, timedelta(days=2), size=2 * MB) for c in CLASSES]  # 8 MB within retention
    assert await world.guard.check() == "short"
    assert world.published() == [LOW] and world.guard.low
    assert world.rec.recording == sorted([C2, C1, KEY])  # class III stopped
    assert world.rec.suspended == {C3}
    assert await world.guard.check() == "short"
    assert world.rec.recording == sorted([C1, KEY])  # then class II
    assert await world.guard.check() == "short"
    assert await world.guard.check() == "short"
    assert world.rec.recording == [] and world.rec.suspended == set(CLASSES)  # key sites last
    assert world.published() == [LOW] * 3  # one alarm per check while short
    # nothing within retention was deleted to make room
    assert {p.relative_to(world.root).as_posix() for p in world.root.rglob("*.mp4")} == set(recent)

    # room again (an operator moved footage away): back above the threshold with a margin
    (world.root / recent[0]).unlink()
    assert DISK - world.used() == 4 * MB  # 3 MB needed, 3.75 MB to resume
    assert await world.guard.check() == "resumed"
    assert world.published() == [OK] and not world.guard.low
    assert world.rec.recording == sorted(CLASSES) and not world.rec.suspended
    assert await world.guard.check() == "ok"


async def test_a_plan_applied_meanwhile_keeps_a_suspended_channel_stopped(world: World) -> None:
    await world.segment(C3, timedelta(days=1), size=8 * MB)
    assert await world.guard.check() == "short"
    await world.rec.apply_plans()
    assert C3 not in world.rec.recording


async def test_a_full_disk_ends_the_segment_not_the_recorder(sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Real ENOSPC from the kernel: the segment files open on /dev/full (no root here for a tiny
    filesystem). The channel's task survives and records again once the disk has room."""
    import asyncio
    import os

    from xueliang.media.frame import Codec, Frame
    from xueliang.recording import writer
    from xueliang.sim.video import encode_clip

    clip = encode_clip(width=160, height=96, seconds=1.0, gop=5)
    bus = EventBus()
    hub = MediaHub(MediaConfig(), bus)
    stream = hub.publish(f"live/{C3}", kind="test")
    rec = Recorder(RecordingConfig(enabled=True, segment_seconds=1, fragment_seconds=0.2), sessions, hub,
                   tmp_path / "recordings", bus=bus)
    real_open = os.open
    full = [True]

    def opening(path: object, flags: int, mode: int = 0o777) -> int:
        if full[0] and str(path).endswith(".part"):
            return real_open("/dev/full", os.O_WRONLY)
        return real_open(path, flags, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.os, "open", opening)
    monkeypatch.setattr(writer, "RETRY_SECONDS", 0.2)

    async def camera() -> None:
        for i in range(10_000):
            data, key = clip[i % len(clip)]
            stream.push_frame(Frame(Codec.H264, i * 3600, i * 3600, data, key))
            await asyncio.sleep(0.004)  # faster than real time: segments close sooner

    cam = asyncio.create_task(camera())
    try:
        await asyncio.sleep(0.1)
        rec.record(C3)
        for _ in range(100):
            if rec.write_errors >= 2:
                break
            await asyncio.sleep(0.05)
        assert rec.write_errors >= 2 and C3 in rec.recording and rec.segments_closed == 0
        full[0] = False  # room again
        for _ in range(200):
            if rec.segments_closed >= 2:
                break
            await asyncio.sleep(0.05)
        assert rec.segments_closed >= 2
    finally:
        cam.cancel()
        await rec.stop()
    async with sessions() as s:
        closed = (await s.scalars(select(Recording).where(Recording.state == "closed"))).all()
    assert len(closed) >= 2 and all((tmp_path / "recordings" / r.path).stat().st_size == r.size for r in closed)


async def test_a_recorder_stopped_while_indexing_a_new_segment_leaves_no_file(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    """The recorder stopped (the channel's task cancelled) while a new segment's index row is being
    written: the segment has only its init, and neither its .part nor a row is left behind (the
    .part once was: seen in a test run on a loaded machine)."""
    import asyncio

    from xueliang.media.frame import Codec, Frame
    from xueliang.recording.index import PART
    from xueliang.sim.video import encode_clip

    clip = encode_clip(width=160, height=96, seconds=1.0, gop=5)
    bus = EventBus()
    hub = MediaHub(MediaConfig(), bus)
    stream = hub.publish(f"live/{C3}", kind="test")
    entered = asyncio.Event()

    class _Stalled:  # a database that never answers the row's transaction
        async def __aenter__(self) -> None:
            entered.set()
            await asyncio.Event().wait()

        async def __aexit__(self, *exc: object) -> bool:
            return False

    def stalling() -> object:
        return _Stalled()

    root = tmp_path / "recordings"
    rec = Recorder(RecordingConfig(enabled=True, segment_seconds=1, fragment_seconds=0.2), stalling,  # type: ignore[arg-type]
                   hub, root, bus=bus)

    async def camera() -> None:
        for i in range(10_000):
            data, key = clip[i % len(clip)]
            stream.push_frame(Frame(Codec.H264, i * 3600, i * 3600, data, key))
            await asyncio.sleep(0.004)

    cam = asyncio.create_task(camera())
    try:
        await asyncio.sleep(0.1)
        rec.record(C3)
        await asyncio.wait_for(entered.wait(), 10)
        assert list(root.rglob(f"*{PART}"))  # the segment's file is there while its row is written
    finally:
        await rec.stop()
        cam.cancel()
    assert not list(root.rglob(f"*{PART}")) and not [p for p in root.rglob("*") if p.is_file()]
    async with sessions() as s:
        assert not (await s.scalars(select(Recording))).all()
