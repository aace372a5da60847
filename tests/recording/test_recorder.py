"""The recorder end to end: simulated cameras over GB/T 28181 through the real media hub, into
segment files that PyAV decodes, an index that matches them, and a crash reconciled on start."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import av
import pytest
from sqlalchemy import select, update

from tests.integration import test_live_chain as live_chain
from tests.integration.test_live_chain import Live, _live, read_for
from xueliang.config import RecordingConfig, Settings
from xueliang.db.tables import Recording
from xueliang.recording.index import PART, contents
from xueliang.recording.writer import Recorder

pytestmark = pytest.mark.slow

KEY_FRAME_INTERVAL = timedelta(seconds=1)  # the simulator's GOP: 25 frames at 25 fps


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async for x in _live(tmp_path, {}):
        yield x


def _decode(path: Path) -> list[float]:
    """Presentation times (s) of the video frames PyAV decodes from the file."""
    with av.open(str(path)) as f:
        return [float(fr.time) for fr in f.decode(video=0) if fr.time is not None]


async def _rows(live: Live, ch: str) -> list[Recording]:
    async with live.platform.sessions() as s:
        return list((await s.scalars(select(Recording).where(Recording.channel_id == ch)
                                     .order_by(Recording.start))).all())


async def test_a_camera_is_recorded_in_segments_indexed_and_reconciled_after_a_crash(
        live: Live, tmp_path: Path) -> None:
    cfg = RecordingConfig(enabled=True, segment_seconds=2, fragment_seconds=0.5)
    root = tmp_path / "recordings"
    rec = Recorder(cfg, live.platform.sessions, live.platform.media, root)
    await rec.start()
    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][0]["id"]
        device = live.sim.device(ch)
        rec.record(ch)
        # someone watches meanwhile: the camera is asked for one stream, not two
        watched = await read_for(c, f"/api/v1/channels/{ch}/live.mp4", 2.0)
        assert watched and len(device.calls) == 1
        for _ in range(200):
            if rec.segments_closed >= 4:
                break
            await asyncio.sleep(0.1)
        assert rec.segments_closed >= 4
    await rec.stop()

    rows = await _rows(live, ch)
    assert len(rows) >= 4 and all(r.state == "closed" and r.tier == "local" for r in rows)
    assert not list(root.rglob(f"*{PART}"))
    for i, r in enumerate(rows):
        last = i == len(rows) - 1  # closed when the recorder stopped: as long as it had got
        path = root / r.path
        assert path.name.endswith(".mp4") and path.parent.parent.name == ch
        assert path.parent.name == r.start.strftime("%Y%m%d")
        assert r.path.endswith(f"/{int(r.start.timestamp() * 1000)}.mp4")
        assert r.size == path.stat().st_size > 0
        times = _decode(path)
        assert len(times) >= (1 if last else 25), (r.path, len(times))  # at least a GOP's worth
        assert r.end is not None
        seconds = (r.end - r.start).total_seconds()
        # the index's length is the file's: its frames span it, give or take one frame
        assert abs((times[-1] - times[0] + 0.04) - seconds) < 0.1, (seconds, times[0], times[-1])
        if not last:  # cut at the first key frame after the length
            assert cfg.segment_seconds <= seconds <= cfg.segment_seconds + KEY_FRAME_INTERVAL.total_seconds()
    for a, b in itertools.pairwise(rows):
        assert a.end is not None
        gap = b.start - a.end
        assert timedelta(milliseconds=-2) <= gap <= KEY_FRAME_INTERVAL, (a.end, b.start)

    # ---- a crash: SIGKILL while a segment is open leaves a .part (everything written reached
    # the kernel) and an open row; the torn fragment at its end is not indexed
    rec = Recorder(cfg, live.platform.sessions, live.platform.media, root)
    await rec.start()
    rec.record(ch)
    part: Path | None = None
    for _ in range(100):
        parts = list(root.rglob(f"*{PART}"))
        if parts and contents(parts[0].read_bytes()).fragments >= 2:
            part = parts[0]
            break
        await asyncio.sleep(0.1)
    assert part is not None
    snapshot = part.read_bytes()
    await rec.stop()
    closed = part.with_name(part.name.removesuffix(PART))
    closed.unlink()
    whole = contents(snapshot).complete
    torn = snapshot[:whole] + b"\x00\x00\x10\x00moof" + b"\x01" * 200  # half a fragment
    part.write_bytes(torn)
    rel = closed.relative_to(root).as_posix()
    async with live.platform.sessions() as s, s.begin():
        await s.execute(update(Recording).where(Recording.path == rel)
                        .values(path=rel + PART, state="open", end=None, size=0))

    restarted = Recorder(cfg, live.platform.sessions, live.platform.media, root)
    await restarted.start()
    assert restarted.reconciled is not None and restarted.reconciled.repaired == 1
    row = next(r for r in await _rows(live, ch) if r.path == rel)
    assert not part.exists() and closed.read_bytes() == snapshot[:whole]
    assert row.state == "closed" and row.size == whole == closed.stat().st_size
    assert row.end is not None and row.end > row.start
    times = _decode(closed)
    assert times and abs((times[-1] - times[0] + 0.04) - (row.end - row.start).total_seconds()) < 0.1


class _Recording(Settings):
    """The live chain's settings with the recorder on, every class recording continuously."""

    recording: RecordingConfig = RecordingConfig(enabled=True, segment_seconds=2, plan_seconds=1,
                                                 continuous={1: True, 2: True, 3: True})


@pytest.fixture
async def recording_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Live]:
    monkeypatch.setattr(live_chain, "Settings", _Recording)
    async for x in _live(tmp_path, {}):
        yield x


async def test_the_recorder_is_off_by_default(live: Live) -> None:
    assert live.platform.recorder is None and live.platform.recording_retention is None
    assert "recording" not in [c.name for c in live.platform.components]


async def test_the_platform_records_what_its_plans_say(recording_live: Live, tmp_path: Path) -> None:
    platform = recording_live.platform
    assert platform.recorder is not None and platform.scheduler is not None
    assert "recording.retention" in platform.scheduler.jobs
    for _ in range(200):
        async with platform.sessions() as s:
            closed = (await s.scalars(select(Recording).where(Recording.state == "closed"))).all()
        if len({r.channel_id for r in closed}) == 4 and len(closed) >= 8:
            break
        await asyncio.sleep(0.1)
    assert len({r.channel_id for r in closed}) == 4, closed  # every channel of the simulator
    root = tmp_path / "recordings"
    for r in closed:
        assert r.size == (root / r.path).stat().st_size
        assert len(_decode(root / r.path)) >= 25
    # each camera was asked for one stream (a device holds one call per channel recorded)
    per_device: dict[int, set[str]] = {}
    for ch in {r.channel_id for r in closed}:
        per_device.setdefault(id(recording_live.sim.device(ch)), set()).add(ch)
    for ch in {r.channel_id for r in closed}:
        device = recording_live.sim.device(ch)
        assert len(device.calls) == len(per_device[id(device)]) == 2
