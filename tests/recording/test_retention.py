"""Retention: segments beyond their channel's retention go, files and rows; others stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Recording
from xueliang.recording.index import segment_path
from xueliang.recording.plans import Policy
from xueliang.recording.retention import Retention

NOW = datetime(2026, 12, 4, 8, tzinfo=UTC)


async def test_segments_beyond_retention_are_deleted_by_class_and_key_site(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    policy = Policy({1: 60, 2: 30, 3: 30}, 90, {1: True})
    channels = {"34020000001320000001": (1, False), "34020000001320000002": (3, False),
                "34020000001320000003": (3, True)}
    unregistered = "34020000001320000009"  # no longer in the registry: class III's 30 days
    expected_kept: set[str] = set()
    async with sessions() as s, s.begin():
        for cid, (pc, ks) in channels.items():
            s.add(Channel(id=cid, name=cid, point_class=pc, key_site=ks))
        for cid in [*channels, unregistered]:
            pc, ks = channels.get(cid, (None, False))
            days = policy.plan(cid, pc, ks).retention_days
            for age in (days - 1, days + 1, 200):
                start = NOW - timedelta(days=age, minutes=1)
                rel = segment_path(cid, start)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(b"x")
                s.add(Recording(channel_id=cid, start=start, end=start + timedelta(minutes=1), size=1, path=rel,
                                state="closed"))
                if age < days:
                    expected_kept.add(rel)
        # an open segment and one in another tier are not this job's
        old = NOW - timedelta(days=400)
        s.add(Recording(channel_id=unregistered, start=old, size=0, path="open.mp4.part", state="open"))
        s.add(Recording(channel_id=unregistered, start=old, end=old, size=0, path="s3.mp4", state="closed",
                        tier="s3"))
    job = Retention(policy, sessions, root)
    marker = await job.run(None, now=NOW)
    assert marker == NOW.isoformat() and job.deleted == 8
    async with sessions() as s:
        left = set((await s.scalars(select(Recording.path))).all())
    assert left == expected_kept | {"open.mp4.part", "s3.mp4"}
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.mp4")}
    assert on_disk == expected_kept
    assert await job.run(None, now=NOW) and job.deleted == 8  # nothing more
