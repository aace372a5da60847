"""Storage tiers against a real S3 server (SeaweedFS): segments older than N days move to the
object store, checked; they play back frame-identical from there; retention deletes them there;
a crash at any step leaves every segment readable in exactly one place."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.media._media_clips import encode
from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer
from xueliang.config import MediaConfig
from xueliang.db.tables import Channel, Recording
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Frame
from xueliang.media.hub import MediaHub
from xueliang.objects.s3 import S3Objects
from xueliang.recording.index import reconcile, segment_path
from xueliang.recording.plans import Policy
from xueliang.recording.playback import RecordedProvider, segment_chunks, segment_frames
from xueliang.recording.retention import Retention
from xueliang.recording.tiers import OBJECT, Tiering, object_key

NOW = datetime(2026, 12, 4, 8, tzinfo=UTC)
CH = "34020000001320000001"
SECONDS = 2  # each segment: 50 frames at 25 fps


@cache
def segment_bytes(seed: int) -> bytes:
    """A real segment as the writer makes it (H.264 from libx264, fragments of 10 frames);
    ``seed`` makes it shorter, so that segments differ."""
    frames, ps = encode(frames=50 - 5 * seed, gop=25)
    muxer = Fmp4Muxer(frames[0].codec, ps, base_dts=frames[0].dts)
    data = bytearray(muxer.init_segment())
    for i in range(0, len(frames), 10):
        part = frames[i:i + 10]
        end = frames[i + 10].dts if i + 10 < len(frames) else part[-1].dts + 3600
        data += muxer.fragment(part, end_dts=end)
    return bytes(data)


@pytest.fixture
async def store(seaweed: SeaweedServer) -> AsyncIterator[S3Objects]:
    s = S3Objects(bucket="xueliang-tiers", endpoint_url=seaweed.endpoint, access_key=ACCESS_KEY,
                  secret_key=SECRET_KEY, prefix=f"t-{uuid.uuid4().hex[:12]}")
    await s.start()
    yield s
    await s.close()


async def _record(sessions: async_sessionmaker[AsyncSession], root: Path, starts: list[datetime]) -> list[str]:
    """Closed segments of CH starting at ``starts``, on disk and in the index."""
    paths = []
    async with sessions() as s, s.begin():
        s.add(Channel(id=CH, name="gate", point_class=1, key_site=False))
        for i, start in enumerate(starts):
            rel = segment_path(CH, start)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            data = segment_bytes(i % 3)
            (root / rel).write_bytes(data)
            s.add(Recording(channel_id=CH, start=start, end=start + timedelta(seconds=SECONDS), size=len(data),
                            path=rel, state="closed"))
            paths.append(rel)
    return paths


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Recording]:
    async with sessions() as s:
        return {r.path: r for r in (await s.scalars(select(Recording))).all()}


def _key(f: Frame) -> tuple[int, int, bool, bytes]:
    return (f.dts, f.pts, f.keyframe, f.data)


async def _demuxed(row: Recording, root: Path, store: S3Objects) -> list[tuple[int, int, bool, bytes]]:
    chunks = await segment_chunks(row, root, store)
    assert chunks is not None, row.path
    return [_key(f) async for f in segment_frames(chunks)]


async def _played(hub: MediaHub, start: datetime, end: datetime) -> list[tuple[bool, bytes]]:
    """Every frame a platform playback of [start, end) publishes, at 16×."""
    name = f"record/{CH}/{uuid.uuid4().hex[:16]}"
    stream = await hub.acquire(name, params={"channel_id": CH, "start": start.timestamp(),
                                             "end": end.timestamp(), "speed": 16})
    src = stream.handle
    await src.control("pause")  # the first key frame is out; the reader starts from it
    reader = stream.reader("frames")
    await src.control("resume")
    got: list[tuple[bool, bytes]] = []
    async with asyncio.timeout(20):
        while chunk := await reader.get():
            got += [(f.keyframe, f.data) for f in chunk]
    return got


async def test_old_segments_move_to_s3_and_play_back_frame_identical(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path, store: S3Objects) -> None:
    root = tmp_path / "recordings"
    old = NOW - timedelta(days=3)
    starts = [old + timedelta(seconds=SECONDS * i) for i in range(3)] + [NOW - timedelta(hours=1)]
    paths = await _record(sessions, root, starts)
    before = {p: await _demuxed(r, root, store) for p, r in (await _rows(sessions)).items()}
    assert all(len(v) >= 25 for v in before.values())
    hub = MediaHub(MediaConfig())
    hub.set_provider("record/", RecordedProvider(sessions, root, objects=store))
    played_before = await _played(hub, old, old + timedelta(seconds=3 * SECONDS))

    job = Tiering(sessions, root, store, after_days=2, batch=2)  # batches of 2: three segments in two
    assert await job.run(None, now=NOW) == NOW.isoformat()
    assert job.moved == 3
    rows = await _rows(sessions)
    for p in paths[:3]:
        r = rows[p]
        data = segment_bytes(paths.index(p) % 3)
        assert (r.tier, r.object_key, r.sha256) == (OBJECT, object_key(p), hashlib.sha256(data).hexdigest())
        assert not (root / p).exists()  # the local copy is gone...
        assert await store.get(object_key(p)) == data  # ...and the object is the same bytes
    assert rows[paths[3]].tier == "local" and (root / paths[3]).is_file()  # recent: stays
    assert not (root / paths[0]).parent.exists()  # the emptied day folder went too

    # read back from S3: the same frames, byte for byte, and the same playback
    after = {p: await _demuxed(r, root, store) for p, r in rows.items()}
    assert after == before
    played_after = await _played(hub, old, old + timedelta(seconds=3 * SECONDS))
    # every frame of the three segments, in order, the same before and after the move
    want = [(k, d) for p in paths[:3] for _, _, k, d in before[p]]
    assert played_before == want
    assert played_after == want
    assert await job.run(None, now=NOW) and job.moved == 3  # nothing more to move


async def test_retention_deletes_moved_segments_from_s3(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path, store: S3Objects) -> None:
    root = tmp_path / "recordings"
    starts = [NOW - timedelta(days=40), NOW - timedelta(days=40) + timedelta(seconds=SECONDS), NOW - timedelta(days=5)]
    paths = await _record(sessions, root, starts)
    await Tiering(sessions, root, store, after_days=2).run(None, now=NOW)
    assert {o.key for o in await store.list("recordings/")} == {object_key(p) for p in paths}
    job = Retention(Policy({1: 30, 2: 30, 3: 30}, 90, {1: True}), sessions, root, store)
    await job.run(None, now=NOW)
    assert job.deleted == 2
    assert set(await _rows(sessions)) == {paths[2]}
    assert {o.key for o in await store.list("recordings/")} == {object_key(paths[2])}


async def test_a_crash_between_copy_and_index_update_leaves_it_local(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path, store: S3Objects) -> None:
    root = tmp_path / "recordings"
    old = NOW - timedelta(days=3)
    paths = await _record(sessions, root, [old + timedelta(seconds=SECONDS * i) for i in range(3)])
    job = Tiering(sessions, root, store, after_days=2)
    # stopped after copying two: the objects exist, but the index still says local
    await job.move(NOW - job.after, stop_after=2)
    assert len(await store.list("recordings/")) == 2
    rows = await _rows(sessions)
    assert all(r.tier == "local" and r.object_key is None and (root / p).is_file() for p, r in rows.items())
    assert await reconcile(sessions, root) is not None  # the start-up reconcile: nothing to fix
    assert {p: r.tier for p, r in (await _rows(sessions)).items()} == dict.fromkeys(paths, "local")
    for r in rows.values():  # readable, from disk
        assert len(await _demuxed(r, root, store)) >= 25
    # the next run finishes: the copies are made again over the orphans
    await job.run(None, now=NOW)
    rows = await _rows(sessions)
    assert all(r.tier == OBJECT for r in rows.values()) and not any((root / p).exists() for p in paths)
    assert len(await store.list("recordings/")) == 3


async def test_a_crash_between_index_update_and_delete_is_finished_and_reconciled(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path, store: S3Objects,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "recordings"
    old = NOW - timedelta(days=3)
    paths = await _record(sessions, root, [old + timedelta(seconds=SECONDS * i) for i in range(2)])
    job = Tiering(sessions, root, store, after_days=2)
    monkeypatch.setattr(job, "_unlink", lambda paths: None)  # killed before deleting the files
    await job.run(None, now=NOW)
    monkeypatch.undo()
    rows = await _rows(sessions)
    assert all(r.tier == OBJECT for r in rows.values()) and all((root / p).is_file() for p in paths)
    # a full reconcile neither indexes the files left behind again nor drops the moved rows
    report = await reconcile(sessions, root)
    assert (report.indexed, report.removed) == (0, 0)
    assert {p: r.tier for p, r in (await _rows(sessions)).items()} == dict.fromkeys(paths, OBJECT)
    for r in rows.values():  # read from the object store, where the index says
        assert len(await _demuxed(r, root, store)) >= 25
    # the next run deletes what was left
    job2 = Tiering(sessions, root, store, after_days=2)
    await job2.run(None, now=NOW)
    assert not any((root / p).exists() for p in paths)
    assert job2.moved == 0


async def test_a_store_that_does_not_answer_leaves_segments_local(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    paths = await _record(sessions, root, [NOW - timedelta(days=3)])
    down = S3Objects(bucket="xueliang-tiers", endpoint_url="http://127.0.0.1:9", access_key=ACCESS_KEY,
                     secret_key=SECRET_KEY, timeout=0.5)
    job = Tiering(sessions, root, down, after_days=2)
    await job.run(None, now=NOW)
    rows = await _rows(sessions)
    assert rows[paths[0]].tier == "local" and (root / paths[0]).is_file() and job.moved == 0
